// The Monitor process's loop: probe the engine every interval (never two probes at once), feed the
// pure core, and hand its messages to Kafka, MQTT and the webhook. It never waits for a broker and
// keeps running when the brokers or the engine are gone.
import { EventEmitter } from 'node:events';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import type { Config } from '../config/schema.js';
import type { MessageSink } from '../telemetry/types.js';
import { WebhookAlerter } from './alerts.js';
import { DeliveryQueue, type DeliveryQueueStatus } from './delivery-queue.js';
import { authenticated, encodeMessage, observe, startTracker, type MonitorMessage, type ProbeResult, type TrackerConfig, type TrackerState } from './monitor-core.js';
import { probeEngine, type Probe } from './probe.js';

export interface MonitorOptions {
  cpId: string;
  monitor: Config['monitor'];
  /** Kafka topic for monitor events (kafka.monitorTopic). */
  kafkaTopic: string;
  /** MQTT topic prefix: messages go to <prefix>/<cp_id>/monitor. */
  mqttPrefix: string;
  log: Logger;
  /** Absent = Kafka off. */
  kafka?: MessageSink;
  /** Absent = MQTT off. */
  mqtt?: MessageSink;
  probe?: Probe;
  now?: () => number;
}

export interface MonitorStatus {
  engine: TrackerState['status'];
  consecutiveFailures: number;
  outage?: { sinceMs: number; failureType: string; reported: boolean };
  probes: number;
  kafka?: DeliveryQueueStatus;
  mqtt?: DeliveryQueueStatus;
}

/** Emits 'probe' (ProbeResult) after every probe and 'message' (MonitorMessage) for every message. */
export class Monitor extends EventEmitter {
  private readonly now: () => number;
  private readonly tracker: TrackerConfig;
  private readonly queues: DeliveryQueue[] = [];
  private readonly kafkaQueue: DeliveryQueue | undefined;
  private readonly mqttQueue: DeliveryQueue | undefined;
  private readonly alerter: WebhookAlerter | undefined;
  private state: TrackerState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private probes = 0;

  constructor(private readonly options: MonitorOptions) {
    super();
    this.now = options.now ?? Date.now;
    const { monitor, log } = options;
    this.tracker = { cpId: options.cpId, monitorId: monitor.monitorId, failureThreshold: monitor.failureThreshold, summaryEveryMs: monitor.summaryEveryMs, hasCentral: Boolean(options.kafka) };
    if (options.kafka) {
      this.kafkaQueue = new DeliveryQueue({ link: 'kafka', sink: options.kafka, topic: options.kafkaTopic, log, maxMessages: monitor.queueMax, now: this.now });
      this.queues.push(this.kafkaQueue);
    }
    if (options.mqtt) {
      const topic = `${options.mqttPrefix}/${options.cpId}/monitor`;
      this.mqttQueue = new DeliveryQueue({ link: 'mqtt', sink: options.mqtt, topic, log, maxMessages: monitor.queueMax, now: this.now });
      this.queues.push(this.mqttQueue);
    }
    if (monitor.webhook.url) this.alerter = new WebhookAlerter(monitor.webhook, { log, now: this.now });
  }

  async start(): Promise<void> {
    const { monitor } = this.options;
    this.options.log.notice('monitor_started', {
      cp_id: this.options.cpId,
      monitor_id: monitor.monitorId,
      engine: `${monitor.host}:${monitor.port}`,
      interval_ms: monitor.intervalMs,
      failure_threshold: monitor.failureThreshold,
      kafka: Boolean(this.kafkaQueue),
      mqtt: Boolean(this.mqttQueue),
      webhook: Boolean(this.alerter),
    });
    const { state, messages } = startTracker(this.tracker, this.now());
    this.state = state;
    this.publish(messages);
    this.schedule(0);
  }

  /** Stops probing, abandons a probe in flight, then gives the brokers a bounded last flush. */
  async stop(flushDeadlineMs = 2000): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.probing;
    await Promise.all([this.alerter?.stop(), ...this.queues.map((queue) => queue.stop(flushDeadlineMs))]);
    this.options.log.notice('monitor_stopped', { cp_id: this.options.cpId, probes: this.probes });
  }

  status(): MonitorStatus {
    const state = this.state;
    const status: MonitorStatus = { engine: state?.status ?? 'UNKNOWN', consecutiveFailures: state?.consecutiveFailures ?? 0, probes: this.probes };
    if (state?.outage) status.outage = { ...state.outage };
    if (this.kafkaQueue) status.kafka = this.kafkaQueue.status();
    if (this.mqttQueue) status.mqtt = this.mqttQueue.status();
    return status;
  }

  private schedule(delayMs: number): void {
    if (this.stopping.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.probing = this.probeOnce().finally(() => {
        this.probing = undefined;
      });
    }, delayMs);
  }

  /** One probe, then the next one an interval after this one began (or at once if this one took longer). */
  private async probeOnce(): Promise<void> {
    const { monitor } = this.options;
    const startedMs = this.now();
    const result = await (this.options.probe ?? probeEngine)({
      host: monitor.host,
      port: monitor.port,
      connectTimeoutMs: monitor.connectTimeoutMs,
      readTimeoutMs: monitor.readTimeoutMs,
      signal: this.stopping.signal,
    });
    if (this.stopping.signal.aborted) return;
    this.probes += 1;
    const nowMs = this.now();
    const step = observe(this.tracker, this.state!, result, nowMs);
    this.logChange(this.state!, step.state, result);
    this.state = step.state;
    this.emit('probe', result);
    this.publish(step.messages);
    this.schedule(Math.max(0, startedMs + monitor.intervalMs - nowMs));
  }

  /**
   * The central system acknowledges the registration when its Kafka cluster has stored the
   * register_to_central message with acks=all; then authenticated_with_central follows.
   */
  private publish(messages: MonitorMessage[]): void {
    for (const message of messages) {
      const value = encodeMessage(message);
      const droppable = message.action === 'health_check';
      for (const queue of this.queues) {
        const onDelivered = queue === this.kafkaQueue && message.action === 'register_to_central' ? () => this.onRegistered() : undefined;
        queue.push({ key: message.cp_id, value, droppable, onDelivered });
      }
      this.alerter?.handle(message);
      this.logMessage(message);
      this.emit('message', message);
    }
  }

  private onRegistered(): void {
    if (this.stopping.signal.aborted || !this.state) return;
    this.options.log.notice(LOG_EVENTS.monitorAuthenticated, { cp_id: this.options.cpId, monitor_id: this.tracker.monitorId, topic: this.options.kafkaTopic });
    this.publish([authenticated(this.tracker, this.state, this.now())]);
  }

  /** One line per status change, not one per probe. */
  private logChange(before: TrackerState, after: TrackerState, result: ProbeResult): void {
    if (before.status === after.status) return;
    const fields = { cp_id: this.options.cpId, status: after.status, previous: before.status, engine_response: result.engineResponse, detail: result.detail };
    if (after.status === 'OK') this.options.log.info('engine_status', fields);
    else this.options.log.warning('engine_status', fields);
  }

  private logMessage(message: MonitorMessage): void {
    const fields = { cp_id: message.cp_id, failure_type: message.failure_type, consecutive_failures: message.consecutive_failures, outage_ms: message.outage_ms, detail: message.detail };
    if (message.action === 'report_engine_failure') this.options.log.err(LOG_EVENTS.engineFailure, fields);
    if (message.action === 'engine_recovered') this.options.log.notice(LOG_EVENTS.engineRecovered, fields);
  }
}
