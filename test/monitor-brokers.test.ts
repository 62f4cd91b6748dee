// The monitor's broker links against real brokers: messages land on Kafka monitor-events (key
// cp_id) and on MQTT <prefix>/<cp_id>/monitor; while a broker is stopped the monitor keeps probing
// and keeps what it could not send, and delivers it in order when the broker is back.
// The outage test stops brokers of its own (startPrivateServices), never the shared ones.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { execFile, spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { connect as mqttConnect, type MqttClient } from 'mqtt';
import { configSchema } from '../agent/config/schema.js';
import { createLogger } from '../agent/logging/logger.js';
import type { MonitorMessage } from '../agent/monitor/monitor-core.js';
import { Monitor } from '../agent/monitor/monitor.js';
import { createMonitorMqttSink } from '../agent/monitor/mqtt-monitor-sink.js';
import { createKafkaSink } from '../agent/telemetry/kafka-sink.js';
import { requireBrokers, startPrivateServices, type Brokers } from './support/services.js';

const log = createLogger({ level: process.env.CHARGER_LOG_LEVEL === 'debug' ? 'debug' : 'warning' });
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** An engine on loopback that answers OK or KO as the test says. */
async function engine(): Promise<{ port: number; set(answer: 'OK' | 'KO'): void }> {
  let answer = 'OK';
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket)).on('error', () => {});
    socket.on('data', () => socket.end(`${answer}\n`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, set: (value) => void (answer = value) };
}

/** Everything on a topic (Kafka) or a topic filter (MQTT), parsed, with an event per message. */
class Reader extends EventEmitter {
  readonly messages: Array<{ key?: string; topic: string; raw: string; value: MonitorMessage }> = [];

  add(topic: string, key: string | undefined, raw: string): void {
    const entry = { topic, key, raw, value: JSON.parse(raw) as MonitorMessage };
    this.messages.push(entry);
    this.emit('message', entry);
  }

  /** The engine's story; authenticated_with_central is left out, its place depends on when Kafka acknowledged. */
  actions(cpId: string): string[] {
    return this.allActions(cpId).filter((action) => action !== 'authenticated_with_central');
  }

  allActions(cpId: string): string[] {
    return this.messages.filter((m) => m.value.cp_id === cpId).map((m) => m.value.action);
  }

  raw(cpId: string): string[] {
    return this.messages.filter((m) => m.value.cp_id === cpId).map((m) => m.raw);
  }

  async until(cpId: string, action: string, count = 1, timeoutMs = 60_000): Promise<void> {
    const deadline = setTimeout(() => this.emit('error', new Error(`fewer than ${count} ${action} for ${cpId} within ${timeoutMs} ms: ${this.actions(cpId)}`)), timeoutMs);
    try {
      while (this.allActions(cpId).filter((a) => a === action).length < count) await once(this, 'message');
    } finally {
      clearTimeout(deadline);
    }
  }
}

async function kafkaReader(brokers: Brokers, topic: string): Promise<Reader> {
  const reader = new Reader();
  const kafka = new Kafka({ brokers: brokers.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const consumer: Consumer = kafka.consumer({ groupId: `monitor-brokers-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ topic: t, message }) => reader.add(t, message.key?.toString(), message.value!.toString()) });
  cleanups.push(() => consumer.disconnect());
  return reader;
}

async function mqttReader(brokers: Brokers, filter: string): Promise<Reader> {
  const reader = new Reader();
  const client: MqttClient = mqttConnect(brokers.mqttUrl, { clientId: `monitor-brokers-${randomBytes(4).toString('hex')}`, clean: false, reconnectPeriod: 500 });
  await new Promise((resolve) => client.once('connect', resolve));
  await client.subscribeAsync(filter, { qos: 1 });
  client.on('message', (topic, payload) => reader.add(topic, undefined, payload.toString()));
  cleanups.push(() => client.endAsync(true));
  return reader;
}

/**
 * A TCP forwarder to a broker that the test can cut and restore. Mosquitto runs without persistence,
 * so restarting it would drop the reader's subscription; cutting only the monitor's path keeps the
 * reader subscribed throughout, so what it sees is exactly what the monitor delivered.
 */
async function cuttableProxy(targetUrl: string): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void> }> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s)).on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  };
  const cut = async () => {
    const closing = new Promise((resolve) => server?.close(resolve));
    sockets.forEach((s) => s.destroy());
    await closing;
  };
  await listen();
  cleanups.push(cut);
  return { url: `mqtt://127.0.0.1:${port}`, cut, restore: listen };
}

function startMonitor(brokers: Brokers, cpId: string, port: number): Monitor {
  const config = configSchema.parse({
    cpId,
    stateDir: '/nonexistent',
    kafka: { brokers: brokers.kafkaBrokers, sendTimeoutMs: 3000 },
    mqtt: { url: brokers.mqttUrl },
    monitor: { port, intervalMs: 100, monitorId: 'broker-test' },
  });
  const monitor = new Monitor({
    cpId,
    monitor: config.monitor,
    kafkaTopic: config.kafka.monitorTopic,
    mqttPrefix: config.mqtt.prefix,
    log,
    kafka: createKafkaSink({ ...config.kafka, clientId: 'monitor-brokers-test' }, log),
    mqtt: createMonitorMqttSink(config.mqtt, log, { clientId: `monitor-${cpId}` }),
  });
  cleanups.push(() => monitor.stop());
  return monitor;
}

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const KCAT_MISSING = spawnSync('kcat', ['-V']).error !== undefined;

/**
 * The original central system's reading of monitor-events, in Python: it does arithmetic on
 * `timestamp` as epoch seconds (with and without float()) and treats the text fields as strings.
 * One JSON message a line in; one JSON summary out; an AssertionError or TypeError fails it.
 */
const ORIGINAL_CENTRAL_PY = String.raw`
import json, sys, time
seen = []
for line in sys.stdin:
    if not line.strip():
        continue
    msg = json.loads(line)
    age_s = time.time() - msg["timestamp"]
    assert abs(age_s - (time.time() - float(msg["timestamp"]))) < 1.0
    assert type(msg["timestamp"]) is float, "timestamp is " + type(msg["timestamp"]).__name__
    for field in ("cp_id", "monitor_id", "action", "status", "engine_response", "message_id", "time"):
        assert type(msg[field]) is str, field + " is " + type(msg[field]).__name__
    assert type(msg["consecutive_failures"]) is int
    seen.append({"action": msg["action"], "status": msg["status"], "engine_response": msg["engine_response"], "age_s": age_s})
print(json.dumps(seen))
`;

interface CentralView {
  action: string;
  status: string;
  engine_response: string;
  age_s: number;
}

async function readAsOriginalCentral(lines: string[]): Promise<CentralView[]> {
  const child = execFile('python3', ['-c', ORIGINAL_CENTRAL_PY], { timeout: 30_000 });
  child.stdin!.end(lines.join('\n') + '\n');
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `the Python central could not read monitor-events:\n${stderr}`);
  return JSON.parse(stdout) as CentralView[];
}

/** A loopback port nobody listens on: every probe is a CONNECTION_ERROR. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Registered and OK, then KO → report → OK → recovered. */
const OUTAGE = ['register_to_central', 'health_check', 'health_check', 'report_engine_failure', 'health_check', 'engine_recovered'];

describe('monitor on real brokers', () => {
  it('publishes to Kafka monitor-events keyed by cp_id and to MQTT <prefix>/<cp_id>/monitor', async () => {
    const brokers = requireBrokers();
    const cpId = `CP-MB-${randomBytes(3).toString('hex')}`;
    const [kafka, mqtt] = [await kafkaReader(brokers, 'monitor-events'), await mqttReader(brokers, `charger/${cpId}/monitor`)];
    const target = await engine();
    target.set('KO');
    const monitor = startMonitor(brokers, cpId, target.port);
    await monitor.start();
    await Promise.all([kafka.until(cpId, 'report_engine_failure'), mqtt.until(cpId, 'report_engine_failure')]);
    target.set('OK');
    await Promise.all([kafka.until(cpId, 'engine_recovered'), mqtt.until(cpId, 'engine_recovered')]);

    assert.deepEqual(kafka.actions(cpId), ['register_to_central', 'health_check', 'report_engine_failure', 'health_check', 'engine_recovered']);
    assert.deepEqual(mqtt.actions(cpId), kafka.actions(cpId));
    assert.ok(kafka.messages.filter((m) => m.value.cp_id === cpId).every((m) => m.key === cpId));
    assert.ok(mqtt.messages.every((m) => m.topic === `charger/${cpId}/monitor`));
  });

  it('keeps probing while Kafka is stopped and MQTT unreachable, and delivers the outage in order when they return', async () => {
    const services = await startPrivateServices();
    cleanups.push(() => services.stop());
    const cpId = `CP-MB-${randomBytes(3).toString('hex')}`;
    const [kafka, mqtt] = [await kafkaReader(services, 'monitor-events'), await mqttReader(services, `charger/${cpId}/monitor`)];
    const proxy = await cuttableProxy(services.mqttUrl);
    const target = await engine();
    const monitor = startMonitor({ kafkaBrokers: services.kafkaBrokers, mqttUrl: proxy.url }, cpId, target.port);
    await monitor.start();
    await Promise.all([kafka.until(cpId, 'health_check'), mqtt.until(cpId, 'health_check')]);
    await Promise.all([kafka.until(cpId, 'authenticated_with_central'), mqtt.until(cpId, 'authenticated_with_central')]);

    await Promise.all([services.stopKafka(), proxy.cut()]);
    const recovered = new Promise<void>((resolve) => monitor.on('message', (m: MonitorMessage) => m.action === 'engine_recovered' && resolve()));
    const failed = new Promise<void>((resolve) => monitor.on('message', (m: MonitorMessage) => m.action === 'report_engine_failure' && resolve()));
    target.set('KO');
    await failed;
    target.set('OK');
    await recovered;
    assert.ok(monitor.status().probes > 4, 'the monitor kept probing');
    assert.deepEqual(kafka.actions(cpId), ['register_to_central', 'health_check']);
    assert.deepEqual(mqtt.actions(cpId), ['register_to_central', 'health_check']);
    assert.equal(monitor.status().kafka!.depth, 4, 'health_check, report_engine_failure, health_check, engine_recovered');
    assert.equal(monitor.status().mqtt!.depth, 4);

    await Promise.all([services.startKafka(), proxy.restore()]);
    await Promise.all([kafka.until(cpId, 'engine_recovered', 1, 120_000), mqtt.until(cpId, 'engine_recovered', 1, 120_000)]);
    assert.deepEqual(kafka.actions(cpId), OUTAGE);
    assert.deepEqual(mqtt.actions(cpId), OUTAGE);
  });

  it('the original central system (Python) reads monitor-events from Kafka: float epoch-seconds arithmetic on timestamp, string fields', async () => {
    const brokers = requireBrokers();
    const cpId = `CP-MB-${randomBytes(3).toString('hex')}`;
    const kafka = await kafkaReader(brokers, 'monitor-events');
    const monitor = startMonitor(brokers, cpId, await closedPort());
    await monitor.start();
    await kafka.until(cpId, 'authenticated_with_central');
    await kafka.until(cpId, 'report_engine_failure');

    const seen = await readAsOriginalCentral(kafka.raw(cpId));
    assert.deepEqual(
      seen.map((m) => m.action).filter((a) => a !== 'authenticated_with_central'),
      ['register_to_central', 'health_check', 'report_engine_failure'],
    );
    const byAction = new Map(seen.map((m) => [m.action, m]));
    assert.equal(byAction.get('register_to_central')!.status, 'REGISTERING');
    assert.equal(byAction.get('register_to_central')!.engine_response, '');
    assert.equal(byAction.get('authenticated_with_central')!.status, 'AUTHENTICATED');
    assert.equal(byAction.get('report_engine_failure')!.engine_response, 'CONNECTION_ERROR');
    for (const message of seen) assert.ok(message.age_s >= 0 && message.age_s < 120, `time.time() - timestamp = ${message.age_s} s`);
  });

  it('kcat (librdkafka) reads the same monitor-events messages, which the Python central accepts', { skip: KCAT_MISSING && !IN_CI ? 'kcat is not installed (apt-get install kcat)' : false }, async () => {
    assert.ok(!KCAT_MISSING, 'kcat is required with CI=true: scripts/test-services.sh installs it as root (apt-get install kcat)');
    const brokers = requireBrokers();
    const cpId = `CP-MB-${randomBytes(3).toString('hex')}`;
    const kafka = await kafkaReader(brokers, 'monitor-events');
    const target = await engine();
    const monitor = startMonitor(brokers, cpId, target.port);
    await monitor.start();
    await kafka.until(cpId, 'authenticated_with_central');
    await kafka.until(cpId, 'health_check');

    const { stdout } = await promisify(execFile)('kcat', ['-b', brokers.kafkaBrokers.join(','), '-C', '-t', 'monitor-events', '-o', 'beginning', '-e', '-q', '-f', '%k\t%s\n'], {
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const lines = stdout
      .split('\n')
      .filter((line) => line.startsWith(`${cpId}\t`))
      .map((line) => line.slice(cpId.length + 1));
    const seen = await readAsOriginalCentral(lines);
    assert.deepEqual(seen.map((m) => m.action).filter((a) => a !== 'authenticated_with_central'), ['register_to_central', 'health_check']);
    assert.ok(seen.some((m) => m.action === 'authenticated_with_central'));
    assert.equal(seen.find((m) => m.action === 'health_check')!.engine_response, 'OK');
  });
});
