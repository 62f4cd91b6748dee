import type { DigitalInput } from '../types.js';

/** A digital input set by the simulation. */
export class SimInput implements DigitalInput {
  private value: boolean;
  private readonly watchers = new Set<(active: boolean) => void>();

  constructor(initial = false) {
    this.value = initial;
  }

  read(): boolean {
    return this.value;
  }

  set(active: boolean): void {
    if (active === this.value) return;
    this.value = active;
    for (const watcher of this.watchers) watcher(active);
  }

  watch(onChange: (active: boolean) => void): () => void {
    this.watchers.add(onChange);
    return () => this.watchers.delete(onChange);
  }

  release(): void {
    this.watchers.clear();
  }
}
