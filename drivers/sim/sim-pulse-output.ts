import type { PulseOutput } from '../types.js';

/** The simulated dead-man output: keeps its level and when each edge happened (performance.now() ms). */
export class SimPulseOutput implements PulseOutput {
  level: 0 | 1 = 0;
  readonly edgesMs: number[] = [];

  toggle(): void {
    this.set(this.level === 1 ? 0 : 1);
  }

  hold(): void {
    if (this.level !== 0) this.set(0);
  }

  release(): void {
    this.hold();
  }

  private set(level: 0 | 1): void {
    this.level = level;
    this.edgesMs.push(performance.now());
  }
}
