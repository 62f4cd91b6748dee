// `charger-agent monitor --test`: reach the engine and each configured broker once, and say what
// answered. Nothing is published: a connectivity check must not look like an event to the central
// system or page anyone.
import { readFileSync } from 'node:fs';
import { Kafka } from 'kafkajs';
import { connect as mqttConnect, type MqttClient } from 'mqtt';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { kafkaSinkInternals } from '../telemetry/kafka-sink.js';
import { probeEngine, type Probe } from './probe.js';

export interface CheckResult {
  target: string;
  /** Whether the target answered. An engine answering KO did answer: it is reachable, and faulted. */
  ok: boolean;
  result: string;
  detail: string;
}

export interface SelfTestDeps {
  log: Logger;
  probe?: Probe;
}

export async function runSelfTest(config: Config, deps: SelfTestDeps): Promise<CheckResult[]> {
  const checks: Array<Promise<CheckResult>> = [checkEngine(config, deps.probe ?? probeEngine)];
  if (config.kafka.brokers.length > 0) checks.push(checkKafka(config, deps.log));
  if (config.mqtt.url) checks.push(checkMqtt(config));
  return Promise.all(checks);
}

async function checkEngine(config: Config, probe: Probe): Promise<CheckResult> {
  const { host, port, connectTimeoutMs, readTimeoutMs } = config.monitor;
  const startedMs = Date.now();
  const result = await probe({ host, port, connectTimeoutMs, readTimeoutMs });
  const answered = result.status === 'OK' || result.status === 'KO';
  const detail = answered
    ? `answered ${result.engineResponse} in ${Date.now() - startedMs} ms${result.status === 'KO' ? ' (the engine reports a fault)' : ''}`
    : (result.detail ?? '');
  return { target: `engine ${host}:${port}`, ok: answered, result: result.status, detail };
}

async function checkKafka(config: Config, log: Logger): Promise<CheckResult> {
  const target = `kafka ${config.kafka.brokers.join(',')}`;
  const quiet = log.child({ check: 'kafka' });
  let admin: ReturnType<Kafka['admin']> | undefined;
  try {
    const clientConfig = kafkaSinkInternals.buildClientConfig({ ...config.kafka, clientId: `${config.kafka.clientId}-monitor-test` }, quiet);
    admin = new Kafka({ ...clientConfig, retry: { retries: 0 } }).admin();
    const cluster = await withDeadline(
      (async () => {
        await admin!.connect();
        return admin!.describeCluster();
      })(),
      config.kafka.sendTimeoutMs,
    );
    return { target, ok: true, result: 'OK', detail: `${cluster.brokers.length} broker(s), controller ${cluster.controller}` };
  } catch (error) {
    return { target, ok: false, result: 'FAIL', detail: (error as Error).message };
  } finally {
    await withDeadline(admin?.disconnect() ?? Promise.resolve(), 2000).catch(() => undefined);
  }
}

async function checkMqtt(config: Config): Promise<CheckResult> {
  const target = `mqtt ${config.mqtt.url}`;
  let client: MqttClient | undefined;
  try {
    const connecting = mqttConnect(config.mqtt.url, {
      clientId: `charger-monitor-test-${process.pid}`,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      username: config.mqtt.username,
      password: config.mqtt.passwordFile ? readFileSync(config.mqtt.passwordFile, 'utf8').replace(/\r?\n$/, '') : undefined,
    });
    client = connecting;
    await new Promise<void>((resolve, reject) => {
      connecting.once('connect', () => resolve());
      connecting.once('error', reject);
      connecting.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    return { target, ok: true, result: 'OK', detail: 'connected' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { target, ok: false, result: 'FAIL', detail: typeof code === 'string' ? code : (error as Error).message };
  } finally {
    client?.on('error', () => {});
    client?.end(true);
  }
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export function formatTable(results: CheckResult[]): string {
  const rows = [['TARGET', 'RESULT', 'DETAIL'], ...results.map((r) => [r.target, r.result, r.detail])];
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`.trimEnd()).join('\n');
}
