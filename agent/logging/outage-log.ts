// "No floods": a link that fails every second logs when it goes down, a periodic count while it
// stays down, and when it comes back, never one line per failure.
import type { Logger, LogFields } from './logger.js';

export interface OutageLogOptions {
  /** Event names, e.g. { down: 'kafka_down', still: 'kafka_still_down', up: 'kafka_up' }. */
  events: { down: string; still: string; up: string };
  /** How often a summary line is written while the outage lasts. Default 60 s. */
  summaryEveryMs?: number;
}

export class OutageLog {
  private downSinceMs: number | undefined;
  private failures = 0;
  private lastSummaryMs = 0;

  constructor(
    private readonly log: Logger,
    private readonly options: OutageLogOptions,
  ) {}

  get isDown(): boolean {
    return this.downSinceMs !== undefined;
  }

  failure(nowMs: number, fields: LogFields = {}): void {
    this.failures += 1;
    if (this.downSinceMs === undefined) {
      this.downSinceMs = nowMs;
      this.lastSummaryMs = nowMs;
      this.log.warning(this.options.events.down, fields);
      return;
    }
    if (nowMs - this.lastSummaryMs >= (this.options.summaryEveryMs ?? 60_000)) {
      this.lastSummaryMs = nowMs;
      this.log.warning(this.options.events.still, { ...fields, failures: this.failures, down_ms: nowMs - this.downSinceMs });
    }
  }

  success(nowMs: number, fields: LogFields = {}): void {
    if (this.downSinceMs === undefined) return;
    this.log.notice(this.options.events.up, { ...fields, failures: this.failures, down_ms: nowMs - this.downSinceMs });
    this.downSinceMs = undefined;
    this.failures = 0;
  }
}
