// The monitor's messages on their way to one broker: kept in memory, bounded, sent in order, and
// retried with backoff (full jitter, agent/retry/backoff.ts) while the broker is away. The monitor
// never waits for a broker.
import { EventEmitter } from 'node:events';
import { OutageLog } from '../logging/outage-log.js';
import type { Logger } from '../logging/logger.js';
import { Backoff } from '../retry/backoff.js';
import type { LinkStatus, MessageSink } from '../telemetry/types.js';

export interface QueuedMessage {
  key: string;
  value: string;
  /** May be dropped first when the queue is full (periodic health checks); failures and recoveries are kept. */
  droppable: boolean;
  /** Called once the broker acknowledged this message. */
  onDelivered?: () => void;
}

export interface DeliveryQueueOptions {
  /** kafka or mqtt, for the log lines. */
  link: 'kafka' | 'mqtt';
  sink: MessageSink;
  topic: string;
  log: Logger;
  maxMessages: number;
  batchMax?: number;
  /** The first retry's ceiling (1 s by default); each failure doubles it up to retryMaxMs (30 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Numbers in [0, 1) for the retry jitter (Math.random by default). */
  random?: () => number;
  /** A send the sink has not settled by then counts as failed (the sink should bound itself first). */
  sendGuardMs?: number;
  now?: () => number;
}

export interface DeliveryQueueStatus {
  link: LinkStatus;
  depth: number;
  sent: number;
  dropped: number;
}

/** Emits 'sent' (count) after each acknowledged batch and 'failed' (Error) after each failed attempt. */
export class DeliveryQueue extends EventEmitter {
  private readonly items: QueuedMessage[] = [];
  private readonly outageLog: OutageLog;
  private readonly now: () => number;
  private sinkStarted = false;
  private pumping: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private stopped = false;
  private readonly guardTimers = new Set<NodeJS.Timeout>();
  private sent = 0;
  private dropped = 0;

  constructor(private readonly options: DeliveryQueueOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.backoff = new Backoff({ initialMs: options.retryInitialMs ?? 1000, maxMs: options.retryMaxMs ?? 30_000, random: options.random });
    // The sink logs its link (kafka_down …); these lines say what it means for the monitor's messages.
    const log = options.log.child({ link: options.link });
    this.outageLog = new OutageLog(log, { events: { down: 'monitor_delivery_failed', still: 'monitor_delivery_still_failing', up: 'monitor_delivery_resumed' } });
  }

  push(message: QueuedMessage): void {
    if (this.stopped) return;
    if (this.items.length >= this.options.maxMessages) this.dropOne();
    this.items.push(message);
    if (!this.retryTimer) void this.pump();
  }

  status(): DeliveryQueueStatus {
    return { link: this.options.sink.status(), depth: this.items.length, sent: this.sent, dropped: this.dropped };
  }

  /** One last attempt to send what is queued, bounded by the deadline; then the sink is stopped. */
  async stop(deadlineMs = 2000): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const flushed = this.pump();
    this.stopped = true;
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([flushed, new Promise((resolve) => (deadline = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(deadline);
    // A send still hanging past the deadline is abandoned: its guard must not keep the process alive.
    for (const timer of this.guardTimers) clearTimeout(timer);
    this.guardTimers.clear();
    if (this.items.length > 0) this.options.log.warning('monitor_queue_abandoned', { link: this.options.link, depth: this.items.length });
    await this.options.sink.stop().catch(() => {});
  }

  private pump(): Promise<void> {
    this.pumping ??= this.drain().finally(() => {
      this.pumping = undefined;
      // A message pushed while the last batch was settling must not wait for the next push.
      if (this.items.length > 0 && !this.retryTimer && !this.stopped) void this.pump();
    });
    return this.pumping;
  }

  private async drain(): Promise<void> {
    try {
      while (this.items.length > 0) {
        await this.ensureStarted();
        const batch = this.items.slice(0, this.options.batchMax ?? 100);
        await this.guard(this.options.sink.send(this.options.topic, batch.map(({ key, value }) => ({ key, value }))));
        const delivered = new Set(batch);
        this.items.splice(0, this.items.length, ...this.items.filter((item) => !delivered.has(item)));
        this.sent += batch.length;
        this.backoff.reset();
        this.outageLog.success(this.now(), { topic: this.options.topic, queued: this.items.length });
        this.emit('sent', batch.length);
        for (const item of batch) item.onDelivered?.();
      }
    } catch (error) {
      this.outageLog.failure(this.now(), { topic: this.options.topic, error: errorText(error), queued: this.items.length });
      this.emit('failed', error);
      this.scheduleRetry();
    }
  }

  private async ensureStarted(): Promise<void> {
    if (this.sinkStarted) return;
    await this.guard(this.options.sink.start());
    this.sinkStarted = true;
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delayMs = this.backoff.nextDelayMs();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.pump();
    }, delayMs);
  }

  private dropOne(): void {
    const index = this.items.findIndex((item) => item.droppable);
    this.items.splice(Math.max(index, 0), 1);
    this.dropped += 1;
    if (this.dropped === 1 || this.dropped % 100 === 0) {
      this.options.log.warning('monitor_queue_dropped', { link: this.options.link, dropped: this.dropped, max: this.options.maxMessages });
    }
  }

  private guard<T>(pending: Promise<T>): Promise<T> {
    const guardMs = this.options.sendGuardMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`MONITOR_SEND_TIMEOUT: ${this.options.link} did not settle within ${guardMs} ms`)), guardMs);
      this.guardTimers.add(timer);
    });
    return Promise.race([pending, timeout]).finally(() => {
      clearTimeout(timer);
      this.guardTimers.delete(timer!);
    });
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
