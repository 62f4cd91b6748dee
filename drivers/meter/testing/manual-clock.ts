// A clock that moves only when a test says so. Timers run in due order; between two timers the
// promise jobs they started are allowed to settle, so async loops advance as they would in real time.
import type { Clock, TimerHandle } from '../clock.js';

interface Timer {
  id: number;
  dueMs: number;
  callback: () => void;
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class ManualClock implements Clock {
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(private nowMs = 0) {}

  now(): number {
    return this.nowMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer = { id: this.nextId++, dueMs: this.nowMs + Math.max(0, delayMs), callback };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: number }).id;
    this.timers = this.timers.filter((timer) => timer.id !== id);
  }

  /** Timers waiting to run. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by ms, running every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const targetMs = this.nowMs + ms;
    await settle();
    for (;;) {
      const next = this.nextDue(targetMs);
      if (!next) break;
      this.timers = this.timers.filter((timer) => timer !== next);
      this.nowMs = next.dueMs;
      next.callback();
      await settle();
    }
    this.nowMs = targetMs;
  }

  /** Advances in steps of stepMs until predicate() holds; throws after limitMs. */
  async advanceUntil(predicate: () => boolean, limitMs: number, stepMs = 10): Promise<void> {
    const startMs = this.nowMs;
    while (!predicate()) {
      if (this.nowMs - startMs >= limitMs) throw new Error(`condition not met within ${limitMs} ms of manual time`);
      await this.advance(stepMs);
    }
  }

  private nextDue(targetMs: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.timers) {
      if (timer.dueMs <= targetMs && (!next || timer.dueMs < next.dueMs)) next = timer;
    }
    return next;
  }
}
