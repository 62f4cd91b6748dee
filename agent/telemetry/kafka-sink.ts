// The Kafka link, behind MessageSink. kafkajs 2.2.4 is the last release and has open reconnect bugs
// (tulios/kafkajs#979: a producer whose connection the broker severed may never reconnect; #919: the
// same after ETIMEDOUT; #1174: a disconnected producer may keep retrying in the background), so:
// - every send is bounded by kafka.sendTimeoutMs, connecting included;
// - kafkajs retries little (our outbox is the retry loop, with its own backoff);
// - a producer whose send did not settle in time, or that failed several sends in a row, is dropped
//   and a fresh client and producer are built (kafka_producer_recreated), at a rate that backs off
//   (with full jitter, agent/retry/backoff.ts) while the outage lasts, so a long outage is not a
//   flood of recreations and a fleet does not recreate in step;
// - acks = -1 (all in-sync replicas) and one request in flight, so a batch lands whole and in order.
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type Producer, type SASLOptions } from 'kafkajs';
import type { Config } from '../config/schema.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import { OutageLog } from '../logging/outage-log.js';
import { Backoff } from '../retry/backoff.js';
import { applyKafkajsIdlePatch } from './kafkajs-idle-patch.js';
import type { LinkStatus, MessageSink } from './types.js';

applyKafkajsIdlePatch();

type KafkaSettings = Config['kafka'];

export interface KafkaSinkOptions {
  now?: () => number;
  /** Consecutive failed sends after which the producer is recreated. */
  recreateAfterFailures?: number;
  /** Numbers in [0, 1) for the jitter between recreations (Math.random by default). */
  random?: () => number;
}

const RECREATE_AFTER_FAILURES = 3;
const RECREATE_MIN_INTERVAL_MS = 30_000;
const RECREATE_MAX_INTERVAL_MS = 600_000;
const DISCONNECT_WAIT_MS = 2_000;

export function createKafkaSink(settings: KafkaSettings, log: Logger, options: KafkaSinkOptions = {}): MessageSink {
  return new KafkaSink(settings, log, options);
}

/** Rejects with KAFKA_SEND_TIMEOUT when `work` has not settled within `ms`. */
function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SendTimeoutError(`KAFKA_SEND_TIMEOUT: ${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

class SendTimeoutError extends Error {}

class KafkaSink implements MessageSink {
  private readonly now: () => number;
  private readonly outage: OutageLog;
  private clientConfig: KafkaConfig | undefined;
  private producer: Producer | undefined;
  private needsConnect = true;
  private connected = false;
  private lastError: string | undefined;
  private failuresInRow = 0;
  private readonly recreateBackoff: Backoff;
  private lastRecreateMs = -Infinity;
  /** No recreation before this: the last one plus a backoff wait. */
  private nextRecreateMs = -Infinity;
  private stopped = false;

  constructor(
    private readonly settings: KafkaSettings,
    private readonly log: Logger,
    private readonly options: KafkaSinkOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.recreateBackoff = new Backoff({ initialMs: RECREATE_MIN_INTERVAL_MS, maxMs: RECREATE_MAX_INTERVAL_MS, random: options.random });
    this.outage = new OutageLog(log, { events: { down: LOG_EVENTS.kafkaDown, still: LOG_EVENTS.kafkaStillDown, up: LOG_EVENTS.kafkaUp } });
  }

  /** Reads the TLS and SASL files (errors name the setting, never a secret) and builds the producer; does not wait for a broker. */
  async start(): Promise<void> {
    process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
    this.clientConfig = buildClientConfig(this.settings, this.log);
    this.producer = this.newProducer();
    this.stopped = false;
  }

  async send(topic: string, messages: Array<{ key: string; value: string }>): Promise<void> {
    const producer = this.producer;
    if (!producer || this.stopped) throw new Error('KAFKA_NOT_STARTED: the Kafka sink is not running');
    try {
      await withTimeout(this.sendWith(producer, topic, messages), this.settings.sendTimeoutMs, `a send of ${messages.length} message(s)`);
    } catch (error) {
      this.onFailure(producer, error as Error);
      throw error;
    }
    this.onSuccess();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const producer = this.producer;
    this.producer = undefined;
    this.connected = false;
    if (producer) await disconnectQuietly(producer);
  }

  status(): LinkStatus {
    return { enabled: this.settings.brokers.length > 0, connected: this.connected, lastError: this.lastError };
  }

  private async sendWith(producer: Producer, topic: string, messages: Array<{ key: string; value: string }>): Promise<void> {
    if (this.needsConnect) {
      await producer.connect();
      this.needsConnect = false;
    }
    await producer.send({ topic, messages, acks: -1, timeout: this.settings.sendTimeoutMs });
  }

  private onSuccess(): void {
    this.connected = true;
    this.lastError = undefined;
    this.failuresInRow = 0;
    // The next outage backs off from the first step again: a long wait drawn in this outage ends with it.
    this.recreateBackoff.reset();
    this.nextRecreateMs = Math.min(this.nextRecreateMs, this.lastRecreateMs + RECREATE_MIN_INTERVAL_MS);
    this.outage.success(this.now(), { brokers: this.settings.brokers.join(',') });
  }

  private onFailure(producer: Producer, error: Error): void {
    this.connected = false;
    this.lastError = error.message;
    this.failuresInRow += 1;
    this.needsConnect = true;
    this.outage.failure(this.now(), { brokers: this.settings.brokers.join(','), error: error.message });
    const wedged = error instanceof SendTimeoutError;
    const repeated = this.failuresInRow >= (this.options.recreateAfterFailures ?? RECREATE_AFTER_FAILURES);
    if ((wedged || repeated) && this.now() >= this.nextRecreateMs) {
      this.recreate(producer, wedged ? 'send_timeout' : 'repeated_errors');
    }
  }

  /** Drops the producer (its sends may still be pending inside kafkajs) and builds a fresh one. */
  private recreate(old: Producer, reason: string): void {
    if (this.stopped || this.producer !== old) return;
    this.lastRecreateMs = this.now();
    const nextAfterMs = this.recreateBackoff.nextDelayMs();
    this.nextRecreateMs = this.lastRecreateMs + nextAfterMs;
    this.log.warning(LOG_EVENTS.kafkaProducerRecreated, {
      reason,
      failures_in_row: this.failuresInRow,
      next_after_ms: nextAfterMs,
    });
    this.producer = this.newProducer();
    this.needsConnect = true;
    void disconnectQuietly(old);
  }

  private newProducer(): Producer {
    const kafka = new Kafka(this.clientConfig!);
    const producer = kafka.producer({
      allowAutoTopicCreation: true,
      idempotent: false,
      maxInFlightRequests: 1,
      retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1000 },
    });
    producer.on(producer.events.DISCONNECT, () => {
      if (this.producer === producer) {
        this.connected = false;
        this.needsConnect = true;
      }
    });
    return producer;
  }
}

async function disconnectQuietly(producer: Producer): Promise<void> {
  await withTimeout(producer.disconnect(), DISCONNECT_WAIT_MS, 'disconnect').catch(() => undefined);
}

/** The kafkajs client settings: short timeouts, few retries, TLS and SASL from files, its log routed to ours. */
function buildClientConfig(settings: KafkaSettings, log: Logger): KafkaConfig {
  const connectionTimeout = Math.min(3000, settings.sendTimeoutMs);
  return {
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout,
    authenticationTimeout: connectionTimeout,
    requestTimeout: settings.sendTimeoutMs,
    enforceRequestTimeout: true,
    retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1000 },
    ssl: buildTls(settings.tls),
    sasl: buildSasl(settings.sasl),
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => routeClientLog(log, entry),
  };
}

/**
 * kafkajs warns on every failed connection attempt: our OutageLog already reports the outage once
 * (kafka_down, a periodic kafka_still_down, kafka_up), so its own lines go to debug.
 */
function routeClientLog(log: Logger, entry: LogEntry): void {
  const { message, broker, error } = entry.log as { message?: string; broker?: string; error?: string };
  log.debug('kafka_client_log', { level: logLevel[entry.level], namespace: entry.namespace, message, broker, error });
}

function readSettingFile(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`KAFKA_CONFIG_INVALID: cannot read ${setting} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function buildTls(tls: KafkaSettings['tls']): KafkaConfig['ssl'] {
  if (!tls.enabled) return undefined;
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ca: tls.caFile ? [readSettingFile('kafka.tls.caFile', tls.caFile)] : undefined,
    cert: tls.certFile ? readSettingFile('kafka.tls.certFile', tls.certFile) : undefined,
    key: tls.keyFile ? readSettingFile('kafka.tls.keyFile', tls.keyFile) : undefined,
  };
}

function buildSasl(sasl: KafkaSettings['sasl']): SASLOptions | undefined {
  if (sasl.mechanism === 'none') return undefined;
  if (!sasl.username) throw new Error(`KAFKA_CONFIG_INVALID: kafka.sasl.username is required with kafka.sasl.mechanism ${sasl.mechanism}`);
  if (!sasl.passwordFile) throw new Error(`KAFKA_CONFIG_INVALID: kafka.sasl.passwordFile is required with kafka.sasl.mechanism ${sasl.mechanism}`);
  // A credential file usually ends with a newline that is not part of the secret.
  const password = readSettingFile('kafka.sasl.passwordFile', sasl.passwordFile).toString('utf8').replace(/\r?\n$/, '');
  return { mechanism: sasl.mechanism, username: sasl.username, password } as SASLOptions;
}

export const kafkaSinkInternals = { buildClientConfig };
