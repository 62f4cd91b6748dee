// Telemetry from the controller to the brokers, never blocking the controller on a broker or the disk:
// publish() hands the event to the store, which numbers it (seq, id) and has its worker thread commit
// it; publish()'s promise resolves once a session event is committed. A drain loop sends the outbox to
// Kafka oldest first, in seq order, in batches — a session event only once committed, a CONSUMO from
// memory once its seq is marked (store/seq-mark.ts) — and deletes only what Kafka acknowledged, so new
// messages never overtake a backlog, a clean run has no duplicates, and after a crash only
// unacknowledged messages are sent again, with the same id.
//
// The id is `<cp_id>-<ledger>-<seq>`: <ledger> is 8 hex digits drawn once when the database is created,
// so a wiped or replaced state directory (seq starting again at 1) never collides with ids the central
// system has already seen and would drop as duplicates.
//
// Kafka off (kafka.brokers empty): nothing is queued for delivery, since nothing would ever drain it;
// the session ledger (committed for every session event) is the record, and MQTT still gets everything.
import type { MeterReading } from '../../drivers/types.js';
import type { ChargeState, TelemetryEvent } from '../charging/types.js';
import type { Config } from '../config/schema.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import { Backoff } from '../retry/backoff.js';
import { createKafkaSink } from './kafka-sink.js';
import { createMqttSink } from './mqtt-sink.js';
import {
  openTelemetryStore,
  type FinalReading,
  type InterruptedSession,
  type LedgerSession,
  type OutboxEntry,
  type StoreStats,
  type TelemetryStore,
} from './store.js';
import type { ChargePointStatus, CommandHandler, DeliveredEvent, LinkStatus, MessageSink, MqttSink, TelemetryPipeline, TelemetryStatus } from './types.js';

export interface PipelineOptions {
  config: Config;
  log: Logger;
  now?: () => number;
  /** Replaces the kafkajs sink (tests); given, Kafka counts as on whatever kafka.brokers says. */
  kafkaSink?: MessageSink;
  mqttSink?: MqttSink;
  /** Protocol lines from the MQTT command topics (mqtt.commands). */
  onCommand?: CommandHandler;
  /** Numbers in [0, 1) for the drain's retry jitter (Math.random by default). */
  random?: () => number;
}

export interface LedgerTelemetryPipeline extends TelemetryPipeline {
  /** Closes the sessions a crash left open (reason interrupted) and queues their SUPPLY_END, once the store is open. */
  recoverInterrupted(final?: FinalReading): Promise<InterruptedSession[]>;
  /** Sessions in the ledger, so the controller continues their numbering (once the store is open). */
  sessionCount(): Promise<number>;
  listSessions(limit: number): Promise<LedgerSession[]>;
}

const BATCH_MAX_MESSAGES = 200;
const BATCH_MAX_BYTES = 512 * 1024;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
const MAINTAIN_EVERY_MS = 1_000;
const BACKLOG_LOG_AFTER_MS = 60_000;
const BACKLOG_LOG_EVERY_MS = 60_000;
const SINK_STOP_WAIT_MS = 1_000;
const STORE_CLOSE_MIN_MS = 10_000;
const SESSION_TOPIC_TYPES = new Set(['SESSION_STARTED', 'SUPPLY_END', 'AVERIADO']);

export function createTelemetryPipeline(options: PipelineOptions): LedgerTelemetryPipeline {
  return new Pipeline(options);
}

const offLink: LinkStatus = { enabled: false, connected: false };

/** A promise with its resolve, for waking the drain loop. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let done!: () => void;
  const promise = new Promise<void>((resolve) => {
    done = resolve;
    timer = setTimeout(resolve, ms);
  });
  return { promise, cancel: () => (clearTimeout(timer), done()) };
}

class Pipeline implements LedgerTelemetryPipeline {
  private readonly now: () => number;
  private readonly kafka: MessageSink | undefined;
  private readonly mqtt: MqttSink | undefined;
  private openedStore: TelemetryStore | undefined;
  private recovering: Promise<unknown> = Promise.resolve();
  private wake = signal();
  private readonly stopSignal = signal();
  private empty = signal();
  private stopping = false;
  private stopped = false;
  private stopWork: Promise<void> | undefined;
  private warnedAfterStop = false;
  private drainLoop: Promise<void> | undefined;
  private maintenance: NodeJS.Timeout | undefined;
  private lastBacklogLogMs = -Infinity;
  private backlogLogged = false;
  private mqttState: Record<string, unknown> = {};
  private statusPending = false;
  private lastMeterMs = -Infinity;

  constructor(private readonly options: PipelineOptions) {
    const { config, log } = options;
    this.now = options.now ?? Date.now;
    this.kafka = options.kafkaSink ?? (config.kafka.brokers.length > 0 ? createKafkaSink(config.kafka, log.child({ link: 'kafka' })) : undefined);
    this.mqtt =
      options.mqttSink ??
      (config.mqtt.url !== '' ? createMqttSink(config.mqtt, config.cpId, log.child({ link: 'mqtt' }), { onCommand: options.onCommand }) : undefined);
  }

  async start(): Promise<void> {
    // Opens in the store's worker thread; not awaited: charging and health go on while it opens.
    this.store.onChange(() => this.wake.resolve());
    await this.kafka?.start();
    await this.mqtt?.start();
    this.maintenance = setInterval(() => this.maintain(), MAINTAIN_EVERY_MS);
    this.maintenance.unref();
    if (this.kafka) this.drainLoop = this.drain(this.kafka);
  }

  publish(event: TelemetryEvent): Promise<boolean> {
    if (this.stopped) {
      if (!this.warnedAfterStop) this.options.log.warning(LOG_EVENTS.storeError, { op: 'publish', error: 'telemetry already stopped', type: event.type });
      this.warnedAfterStop = true;
      return Promise.resolve(false);
    }
    const appended = this.store.append(event);
    // MQTT is the live view: it gets the event as soon as it has its seq, durable or not yet.
    void appended.numbered.then((delivered) => delivered && this.toMqtt(delivered));
    this.wake.resolve();
    return appended.durable;
  }

  publishStatus(status: ChargePointStatus): void {
    this.updateStatus({ ...status });
  }

  publishReading(reading: MeterReading, state: ChargeState): void {
    if (!this.mqtt || this.stopped) return;
    if (this.mqttState.state !== state) this.updateStatus({ state });
    if (this.now() - this.lastMeterMs < this.options.config.mqtt.meterIntervalMs) return;
    this.lastMeterMs = this.now();
    this.mqtt.publish(
      'meter',
      JSON.stringify({
        cp_id: this.options.config.cpId,
        ts: new Date(reading.takenAtMs).toISOString(),
        state,
        power_w: reading.powerW,
        voltage_v: reading.voltageV,
        current_a: reading.currentA,
        meter_import_kwh: reading.importKwh,
        session_id: this.mqttState.session_id,
        kwh: this.mqttState.kwh,
        importe: this.mqttState.importe,
      }),
    );
  }

  stop(deadlineMs = 3_000): Promise<void> {
    this.stopWork ??= this.shutdown(deadlineMs);
    return this.stopWork;
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs; // wall time, not the injectable clock: this bounds a real wait
    this.stopping = true;
    if (this.kafka?.status().connected) await this.drained(deadlineMs);
    this.stopped = true;
    this.stopSignal.resolve();
    clearInterval(this.maintenance);
    if (this.drainLoop) {
      const rest = delay(Math.max(0, deadline - Date.now()));
      await Promise.race([this.drainLoop, rest.promise]);
      rest.cancel();
    }
    await this.recovering;
    // Commits what waits in memory. Its own, longer bound: a store still opening, or an SD card in an
    // fsync stall, must not turn a clean stop into lost session events.
    await this.openedStore?.close(Math.max(STORE_CLOSE_MIN_MS, deadline - Date.now()));
    const sinkWait = delay(Math.max(SINK_STOP_WAIT_MS, deadline - Date.now()));
    await Promise.race([Promise.allSettled([this.mqtt?.stop(SINK_STOP_WAIT_MS), this.kafka?.stop()]), sinkWait.promise]);
    sinkWait.cancel();
  }

  status(): TelemetryStatus {
    const stats = this.storeStats();
    return {
      store: {
        state: stats?.state ?? (this.stopped ? 'closed' : 'opening'),
        pending: stats?.pending ?? 0,
        oldestPendingAgeMs: stats?.oldestPendingMs === undefined ? 0 : Math.max(0, this.now() - stats.oldestPendingMs),
        writeFailures: stats?.writeFailures ?? 0,
      },
      kafka: this.kafka?.status() ?? offLink,
      mqtt: this.mqtt?.status() ?? offLink,
      outbox: {
        depth: stats?.depth ?? 0,
        oldestAgeMs: stats?.oldestCreatedMs === undefined ? 0 : Math.max(0, this.now() - stats.oldestCreatedMs),
        droppedConsumo: stats?.droppedConsumo ?? 0,
        bytes: stats?.outboxBytes ?? 0,
      },
    };
  }

  recoverInterrupted(final?: FinalReading): Promise<InterruptedSession[]> {
    const recovery = this.store.recoverInterrupted(final).then((interrupted) => {
      for (const { event } of interrupted) this.toMqtt(event);
      if (interrupted.length > 0) this.wake.resolve();
      return interrupted;
    });
    this.recovering = recovery.catch(() => undefined);
    return recovery;
  }

  sessionCount(): Promise<number> {
    return this.store.sessionCount();
  }

  listSessions(limit: number): Promise<LedgerSession[]> {
    return this.store.listSessions(limit);
  }

  /** The store's figures, or none when it is closed or cannot be read: status() answers /health, it must not throw. */
  private storeStats(): StoreStats | undefined {
    if (!this.openedStore || this.stopped) return undefined;
    try {
      return this.openedStore.stats();
    } catch (error) {
      this.options.log.err(LOG_EVENTS.storeError, { op: 'status', error: (error as Error).message });
      return undefined;
    }
  }

  private get store(): TelemetryStore {
    this.openedStore ??= openTelemetryStore({
      stateDir: this.options.config.stateDir,
      cpId: this.options.config.cpId,
      maxBytes: this.options.config.store.maxBytes,
      consumoFlushMs: this.options.config.store.consumoFlushMs,
      ledgerCheckpointMs: this.options.config.store.ledgerCheckpointMs,
      outbox: this.kafka !== undefined,
      log: this.options.log.child({ part: 'store' }),
      now: this.now,
    });
    return this.openedStore;
  }

  /** Oldest first, in batches; a batch is deleted only once acknowledged, and retried with backoff until it is. */
  private async drain(kafka: MessageSink): Promise<void> {
    const { topic, sendTimeoutMs } = this.options.config.kafka;
    const key = this.options.config.cpId;
    const backoff = new Backoff({ initialMs: RETRY_MIN_MS, maxMs: RETRY_MAX_MS, random: this.options.random });
    while (!this.stopped) {
      let batch: OutboxEntry[];
      try {
        batch = await this.store.nextBatch(BATCH_MAX_MESSAGES, BATCH_MAX_BYTES);
      } catch (error) {
        // A read error (SQLITE_IOERR, a dead worker) must not end delivery for good: log it, wait, read again.
        this.options.log.err(LOG_EVENTS.storeError, { op: 'peek', error: (error as Error).message });
        const pause = delay(RETRY_MAX_MS);
        await Promise.race([pause.promise, this.stopSignal.promise]);
        pause.cancel();
        continue;
      }
      if (batch.length === 0) {
        if (this.store.stats().depth === 0) this.empty.resolve();
        await this.idle();
        continue;
      }
      // The sink bounds its sends; this bound is for a sink that does not.
      const guard = delay(sendTimeoutMs + 1_000);
      const sent = await Promise.race([
        kafka.send(topic, batch.map((entry) => ({ key, value: entry.value }))).then(
          () => true,
          () => false,
        ),
        guard.promise.then(() => false),
      ]);
      guard.cancel();
      if (sent) {
        this.openedStore?.acknowledge(batch); // a no-op once stop() closed the store: sent again at the next start
        backoff.reset();
        continue;
      }
      if (this.stopping) return;
      const pause = delay(backoff.nextDelayMs());
      await Promise.race([pause.promise, this.stopSignal.promise]);
      pause.cancel();
    }
  }

  /** Waits for a publish, a maintenance tick that may have changed the outbox, or stop. */
  private async idle(): Promise<void> {
    this.wake = signal();
    const tick = delay(MAINTAIN_EVERY_MS);
    await Promise.race([this.wake.promise, tick.promise, this.stopSignal.promise]);
    tick.cancel();
  }

  /** Resolves once the drain loop found the outbox empty, or after `withinMs`. */
  private async drained(withinMs: number): Promise<void> {
    const limit = delay(withinMs);
    // a session event committing now is sent before the links close
    await Promise.race([this.openedStore?.settled(), limit.promise]);
    if ((this.openedStore?.stats().depth ?? 0) === 0) return limit.cancel();
    this.empty = signal();
    await Promise.race([this.empty.promise, limit.promise]);
    limit.cancel();
  }

  private maintain(): void {
    if (this.stopped || !this.openedStore) return;
    try {
      this.openedStore.maintain();
    } catch (error) {
      this.options.log.err(LOG_EVENTS.storeError, { op: 'maintain', error: (error as Error).message });
    }
    this.logBacklog();
  }

  private logBacklog(): void {
    if (!this.kafka) return;
    const { depth, oldestAgeMs, bytes } = this.status().outbox;
    const nowMs = this.now();
    if (depth > 0 && oldestAgeMs >= BACKLOG_LOG_AFTER_MS && nowMs - this.lastBacklogLogMs >= BACKLOG_LOG_EVERY_MS) {
      this.lastBacklogLogMs = nowMs;
      this.backlogLogged = true;
      this.options.log.warning(LOG_EVENTS.outboxBacklog, { depth, oldest_age_ms: oldestAgeMs, bytes });
    } else if (depth === 0 && this.backlogLogged) {
      this.backlogLogged = false;
      this.options.log.notice(LOG_EVENTS.outboxBacklog, { depth: 0, drained: true });
    }
  }

  private toMqtt(event: DeliveredEvent): void {
    if (!this.mqtt) return;
    if (SESSION_TOPIC_TYPES.has(event.type)) this.mqtt.publish('session', JSON.stringify(event));
    switch (event.type) {
      case 'CP_STATUS':
        this.updateStatus({ state: event.state, in_service: event.in_service, faults: event.faults, ts: event.ts });
        return;
      case 'SESSION_STARTED':
        this.updateStatus({ session_id: event.session_id, user_id: event.user_id, kwh: 0, importe: 0, ts: event.ts });
        return;
      case 'SUPPLY_END':
        this.updateStatus({ session_id: undefined, user_id: undefined, kwh: undefined, importe: undefined, ts: event.ts });
        return;
      case 'CONSUMO':
        // Kept for /meter; the retained status is not rewritten every second.
        this.mqttState = { ...this.mqttState, kwh: event.kwh, importe: event.importe };
        return;
      case 'AVERIADO':
        return;
    }
  }

  /**
   * The retained status changes once per core step: the events of one step (SESSION_STARTED and the
   * CP_STATUS Authorized it brings, SUPPLY_END and CP_STATUS Available) are published synchronously
   * by the controller, so they are merged and sent together at the end of the step (a microtask), and
   * no status ever shows a session with the state before it. Nothing is sent before the state,
   * in_service and faults are all known (publishStatus at start, or a CP_STATUS).
   */
  private updateStatus(change: Record<string, unknown>): void {
    this.mqttState = { ...this.mqttState, ...change };
    if (this.statusPending) return;
    this.statusPending = true;
    queueMicrotask(() => {
      this.statusPending = false;
      const { kwh: _kwh, importe: _importe, ...state } = this.mqttState;
      if (state.state === undefined || state.in_service === undefined || state.faults === undefined) return;
      this.mqtt?.publish('status', JSON.stringify({ cp_id: this.options.config.cpId, ...state }));
    });
  }
}
