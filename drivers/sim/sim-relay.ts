import type { Relay } from '../types.js';
import { SimInput } from './sim-input.js';

/** How the simulated contactor's auxiliary contact behaves. */
export type ContactMode = 'normal' | 'welded' | 'stuck_open';

/** A contactor whose feedback contact follows the coil after followMs, unless welded or stuck open. */
export class SimRelay implements Relay {
  readonly feedback = new SimInput(false);
  private commandedClosed = false;
  private mode: ContactMode = 'normal';
  private pending: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly followMs: number) {}

  get isCommandedClosed(): boolean {
    return this.commandedClosed;
  }

  close(): void {
    this.command(true);
  }

  open(): void {
    this.command(false);
  }

  release(): void {
    this.command(false);
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
  }

  setMode(mode: ContactMode): void {
    this.mode = mode;
    this.follow();
  }

  private command(closed: boolean): void {
    this.commandedClosed = closed;
    if (this.pending) clearTimeout(this.pending);
    // the contact moves later, never inside the caller's stack: a real contactor takes milliseconds
    this.pending = setTimeout(() => this.follow(), this.followMs);
  }

  private follow(): void {
    this.pending = undefined;
    const contact = this.mode === 'welded' ? true : this.mode === 'stuck_open' ? false : this.commandedClosed;
    this.feedback.set(contact);
  }
}
