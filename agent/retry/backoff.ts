// How long to wait before trying again, for every retry loop of the agent and the monitor:
// exponential, capped, with "full jitter" — the wait is uniform in [0, min(cap, initial * 2^n))
// after n failures in a row. Without the jitter, a fleet of charge points that lost the same
// central broker would retry in lockstep and meet it together when it comes back; spreading each
// wait over its whole range spreads the fleet. A success resets it to the first, shortest ceiling.

export interface BackoffSettings {
  /** The ceiling of the first wait. */
  initialMs: number;
  /** No ceiling grows past this. */
  maxMs: number;
  /** Numbers in [0, 1): Math.random by default; tests pass a fixed or seeded one. */
  random?: () => number;
}

/** Doublings past which the ceiling is at any cap a loop could have (2^40 ms is 35 years). */
const MAX_EXPONENT = 40;

export class Backoff {
  private failuresInRow = 0;
  private readonly random: () => number;

  constructor(private readonly settings: BackoffSettings) {
    // A zero ceiling would make a retry loop spin; an initialMs above maxMs just starts at maxMs.
    if (!(settings.initialMs > 0) || !(settings.maxMs > 0)) {
      throw new RangeError(`BACKOFF_SETTINGS: initialMs and maxMs must be above 0 ms, got ${settings.initialMs} and ${settings.maxMs}`);
    }
    this.random = settings.random ?? Math.random;
  }

  /** Waits handed out since the last reset. */
  get failures(): number {
    return this.failuresInRow;
  }

  /** The ceiling of the next wait: min(capMs, initialMs * 2^failures); capMs narrows maxMs for a while (never widens it). */
  ceilingMs(capMs = this.settings.maxMs): number {
    const exponent = Math.min(this.failuresInRow, MAX_EXPONENT);
    return Math.min(this.settings.maxMs, capMs, this.settings.initialMs * 2 ** exponent);
  }

  /** The wait before the next attempt, a whole number of ms in [0, ceiling); each call doubles the next ceiling. */
  nextDelayMs(capMs?: number): number {
    const ceilingMs = this.ceilingMs(capMs);
    this.failuresInRow += 1;
    return Math.floor(this.random() * ceilingMs);
  }

  /** After a success: the next wait is drawn from the first ceiling again. */
  reset(): void {
    this.failuresInRow = 0;
  }
}
