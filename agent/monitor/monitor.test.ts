import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { configSchema } from '../config/schema.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { FakeSink } from './testing/fake-sink.js';
import { Monitor, type MonitorOptions } from './monitor.js';
import type { MonitorMessage, ProbeResult } from './monitor-core.js';
import type { Probe } from './probe.js';

/** A stand-in engine on loopback whose answer a test switches: OK, KO, silence, or gone. */
class Engine {
  answer: 'OK' | 'KO' | 'silent' = 'OK';
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  async listen(port = this.port): Promise<void> {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      socket.on('data', () => {
        if (this.answer !== 'silent') socket.end(`${this.answer}\n`);
      });
    });
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server?.listening) await new Promise((resolve) => this.server!.close(resolve));
  }

  stop(): Promise<void> {
    return this.close();
  }
}

const running: Array<{ stop(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((thing) => thing.stop()));
});

function monitorFor(port: number, extra: Partial<MonitorOptions> = {}, monitorSettings: Record<string, unknown> = {}) {
  const config = configSchema.parse({
    cpId: 'CP-007',
    stateDir: '/nonexistent',
    monitor: { port, intervalMs: 10, readTimeoutMs: 200, connectTimeoutMs: 200, monitorId: 'mon-A', ...monitorSettings },
  });
  const log = createMemoryLogger();
  const kafka = new FakeSink();
  const mqtt = new FakeSink();
  const monitor = new Monitor({ cpId: config.cpId, monitor: config.monitor, kafkaTopic: config.kafka.monitorTopic, mqttPrefix: config.mqtt.prefix, log, kafka, mqtt, ...extra });
  running.push(monitor);
  return { monitor, kafka, mqtt, log };
}

/** Resolves with the first message for which `match` holds, from now on. */
function nextMessage(monitor: Monitor, match: (m: MonitorMessage) => boolean): Promise<MonitorMessage> {
  return new Promise((resolve) => {
    const onMessage = (m: MonitorMessage) => {
      if (!match(m)) return;
      monitor.off('message', onMessage);
      resolve(m);
    };
    monitor.on('message', onMessage);
  });
}
const action = (name: MonitorMessage['action']) => (m: MonitorMessage) => m.action === name;

/** The actions a sink took, without the registration's acknowledgement (its place depends on when the broker answers). */
const engineActions = (sink: FakeSink) => sink.values().map((v) => v.action).filter((a) => a !== 'authenticated_with_central');

/** Resolves once the sink has acknowledged a message for which `match` holds. */
async function acknowledged(sink: FakeSink, match: (value: Record<string, unknown>) => boolean): Promise<void> {
  while (!sink.values().some(match)) await once(sink, 'acknowledged');
}

describe('monitor', () => {
  it('registers, then publishes health checks to Kafka monitor-events and MQTT keyed by cp_id', async () => {
    const engine = new Engine();
    await engine.listen();
    running.push(engine);
    const { monitor, kafka, mqtt } = monitorFor(engine.port);
    const firstCheck = nextMessage(monitor, action('health_check'));
    await monitor.start();
    assert.equal((await firstCheck).status, 'OK');
    for (const sink of [kafka, mqtt]) {
      await acknowledged(sink, (v) => v.action === 'health_check');
      await acknowledged(sink, (v) => v.action === 'authenticated_with_central');
    }

    assert.deepEqual(engineActions(kafka), ['register_to_central', 'health_check']);
    assert.ok(kafka.acknowledged.every((m) => m.topic === 'monitor-events' && m.key === 'CP-007'));
    assert.ok(mqtt.acknowledged.every((m) => m.topic === 'charger/CP-007/monitor'));
    const [register] = kafka.values();
    assert.equal(register!.monitor_id, 'mon-A');
    assert.equal(register!.status, 'REGISTERING');
    assert.equal(typeof register!.timestamp, 'number');
    assert.ok(Math.abs(Date.now() / 1000 - Number(register!.timestamp)) < 60);
    assert.equal(Date.parse(String(register!.time)), Number(register!.timestamp) * 1000);
    assert.equal(register!.engine_response, '');
    const authenticatedMessage = kafka.values().find((v) => v.action === 'authenticated_with_central');
    assert.equal(authenticatedMessage!.status, 'AUTHENTICATED');
  });

  it('sends authenticated_with_central only once Kafka acknowledged the registration', async () => {
    const engine = new Engine();
    await engine.listen();
    running.push(engine);
    const { monitor, kafka, mqtt } = monitorFor(engine.port);
    kafka.up = false;
    await monitor.start();
    await acknowledged(mqtt, (v) => v.action === 'health_check');
    assert.ok(!mqtt.values().some((v) => v.action === 'authenticated_with_central'), 'not before the central acknowledged');
    kafka.up = true;
    await acknowledged(kafka, (v) => v.action === 'authenticated_with_central');
    await acknowledged(mqtt, (v) => v.action === 'authenticated_with_central');
    const kafkaActions = kafka.values().map((v) => v.action);
    assert.equal(kafkaActions.filter((a) => a === 'authenticated_with_central').length, 1);
    assert.ok(kafkaActions.indexOf('authenticated_with_central') > kafkaActions.indexOf('register_to_central'));
  });

  it('with no central system configured, registers with status NO_CENTRAL and never claims authentication', async () => {
    const engine = new Engine();
    await engine.listen();
    running.push(engine);
    const { monitor, mqtt } = monitorFor(engine.port, { kafka: undefined });
    await monitor.start();
    await acknowledged(mqtt, (v) => v.action === 'health_check');
    await monitor.stop();
    const [register] = mqtt.values();
    assert.deepEqual([register!.action, register!.status], ['register_to_central', 'NO_CENTRAL']);
    assert.ok(!mqtt.values().some((v) => v.action === 'authenticated_with_central'));
  });

  it('reports an engine that went away once, and its recovery when it is back', async () => {
    const engine = new Engine();
    await engine.listen();
    running.push(engine);
    const { monitor, kafka, log } = monitorFor(engine.port);
    const ok = nextMessage(monitor, action('health_check'));
    await monitor.start();
    await ok;

    const failure = nextMessage(monitor, action('report_engine_failure'));
    await engine.close();
    const report = await failure;
    assert.equal(report.failure_type, 'CONNECTION_ERROR');
    assert.equal(report.consecutive_failures, 3);
    assert.equal(report.event_type, 'ENGINE_FAILURE');

    // Keep failing for a while: still one report.
    while (monitor.status().consecutiveFailures < 10) await once(monitor, 'probe');
    const recovered = nextMessage(monitor, action('engine_recovered'));
    await engine.listen();
    const recovery = await recovered;
    assert.equal(recovery.status, 'OK');
    assert.ok((recovery.outage_ms ?? -1) >= 0);
    await acknowledged(kafka, (v) => v.action === 'engine_recovered');
    assert.equal(kafka.values().filter((v) => v.action === 'report_engine_failure').length, 1);

    const events = log.lines.map((l) => l.event);
    assert.equal(events.filter((e) => e === 'engine_failure').length, 1);
    assert.equal(events.filter((e) => e === 'engine_recovered').length, 1);
    assert.equal(events.filter((e) => e === 'engine_status').length, 3, 'UNKNOWN→OK, OK→CONNECTION_ERROR, →OK: one line per change');
  });

  it('reports an engine answering KO with failure_type KO', async () => {
    const engine = new Engine();
    engine.answer = 'KO';
    await engine.listen();
    running.push(engine);
    const { monitor } = monitorFor(engine.port);
    const failure = nextMessage(monitor, action('report_engine_failure'));
    await monitor.start();
    const report = await failure;
    assert.equal(report.failure_type, 'KO');
    assert.equal(report.engine_response, 'KO');
  });

  it('reports a silent engine as a TIMEOUT outage', async () => {
    const engine = new Engine();
    engine.answer = 'silent';
    await engine.listen();
    running.push(engine);
    const { monitor } = monitorFor(engine.port, {}, { readTimeoutMs: 20 });
    const failure = nextMessage(monitor, action('report_engine_failure'));
    await monitor.start();
    assert.equal((await failure).failure_type, 'TIMEOUT');
  });

  it('keeps probing while the brokers are down, and delivers everything in order when they return', async () => {
    const engine = new Engine();
    engine.answer = 'KO';
    await engine.listen();
    running.push(engine);
    const { monitor, kafka } = monitorFor(engine.port);
    kafka.up = false;
    const failure = nextMessage(monitor, action('report_engine_failure'));
    await monitor.start();
    await failure;
    engine.answer = 'OK';
    await nextMessage(monitor, action('engine_recovered'));
    assert.ok(monitor.status().kafka!.depth >= 4);
    assert.equal(kafka.acknowledged.length, 0);

    kafka.up = true;
    await acknowledged(kafka, (v) => v.action === 'engine_recovered');
    assert.deepEqual(engineActions(kafka), ['register_to_central', 'health_check', 'report_engine_failure', 'health_check', 'engine_recovered']);
  });

  it('never runs two probes at once, even when a probe takes longer than the interval', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const slowProbe: Probe = async () => {
      calls += 1;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 15)); // longer than the 1 ms interval
      inFlight -= 1;
      return { status: 'OK', engineResponse: 'OK' };
    };
    const { monitor } = monitorFor(1, { probe: slowProbe }, { intervalMs: 1 });
    await monitor.start();
    while (calls < 5) await once(monitor, 'probe');
    assert.equal(maxInFlight, 1);
  });

  it('stop settles at once while a probe hangs, and flushes what it can', async () => {
    let probeStarted!: () => void;
    const started = new Promise<void>((resolve) => (probeStarted = resolve));
    const hangingProbe: Probe = (options) =>
      new Promise<ProbeResult>((resolve) => {
        probeStarted();
        options.signal?.addEventListener('abort', () => resolve({ status: 'CONNECTION_ERROR', engineResponse: null, detail: 'aborted' }));
      });
    const { monitor, kafka, log } = monitorFor(1, { probe: hangingProbe });
    await monitor.start();
    await started;
    await monitor.stop();
    assert.deepEqual(kafka.values().map((v) => v.action), ['register_to_central', 'authenticated_with_central']);
    assert.ok(kafka.stopped);
    assert.equal(monitor.status().probes, 0, 'the abandoned probe is not counted as a result');
    assert.ok(log.lines.some((l) => l.event === 'monitor_stopped'));
  });

  it('sends a webhook alert when the engine fails', async () => {
    const received: Array<Record<string, unknown>> = [];
    const gateway = createHttpServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
      gateway.emit('alert');
    });
    gateway.listen(0, '127.0.0.1');
    await once(gateway, 'listening');
    running.push({ stop: () => new Promise((resolve) => gateway.close(resolve)) });
    const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/alert`;

    const engine = new Engine();
    engine.answer = 'KO';
    await engine.listen();
    running.push(engine);
    const { monitor } = monitorFor(engine.port, {}, { webhook: { url } });
    const alerted = once(gateway, 'alert');
    await monitor.start();
    await alerted;
    assert.equal(received[0]!.alert, 'engine_failure');
    assert.equal(received[0]!.failure_type, 'KO');
  });
});
