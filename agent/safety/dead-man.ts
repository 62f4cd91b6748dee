// The dead-man square wave: toggled by a timer on the main event loop, only while the core has the
// relay commanded closed. A blocked or dead loop makes no more edges, and the charge pump /
// retriggerable monostable in series with the contactor coil drops it within its hold time. When
// the relay is commanded open the line is held at its idle level at once, in the same step.
import type { PulseOutput } from '../../drivers/types.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';

/** A gap this many periods long between two edges is logged: the circuit may have dropped the coil. */
const GAP_PERIODS = 5;

export class DeadManPulse {
  private timer: NodeJS.Timeout | undefined;
  private lastEdgeMs = 0;
  private failing = false;
  readonly halfPeriodMs: number;

  constructor(
    private readonly output: PulseOutput,
    readonly hz: number,
    private readonly log: Logger,
  ) {
    this.halfPeriodMs = 500 / hz;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Called after every step of the core with whether the relay is meant to be closed. */
  follow(relayCommandedClosed: boolean): void {
    if (relayCommandedClosed && !this.timer) this.start();
    else if (!relayCommandedClosed && this.timer) this.stop();
  }

  /** Holds the line idle and stops the timer (relay open, shutdown). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.attempt(() => this.output.hold());
  }

  private start(): void {
    this.lastEdgeMs = performance.now();
    this.attempt(() => this.output.toggle());
    this.timer = setInterval(() => this.edge(), this.halfPeriodMs);
  }

  private edge(): void {
    const now = performance.now();
    const gapMs = now - this.lastEdgeMs;
    this.lastEdgeMs = now;
    if (gapMs > GAP_PERIODS * 2 * this.halfPeriodMs) {
      this.log.warning(LOG_EVENTS.heartbeatGap, { gap_ms: Math.round(gapMs), period_ms: 2 * this.halfPeriodMs, effect: 'no dead-man edges: the contactor may have dropped' });
    }
    this.attempt(() => this.output.toggle());
  }

  private attempt(write: () => void): void {
    try {
      write();
      this.failing = false;
    } catch (error) {
      if (this.failing) return;
      this.failing = true;
      this.log.crit(LOG_EVENTS.heartbeatFailed, { error, effect: 'no dead-man edges: the contactor drops while the relay is commanded closed' });
    }
  }
}
