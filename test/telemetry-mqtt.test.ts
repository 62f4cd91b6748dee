// Telemetry against a real Mosquitto (scripts/test-services.sh): retained status and online flag, the
// last will of a killed agent, command topics, and a 30-second broker outage mid-session.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type MqttClient } from 'mqtt';
import { configSchema } from '../agent/config/schema.js';
import { createMemoryLogger } from '../agent/logging/testing/memory-logger.js';
import { createMqttSink, mqttTopics } from '../agent/telemetry/mqtt-sink.js';
import { initialState, next } from '../agent/charging/state-machine.js';
import type { CoreConfig, CoreEvent } from '../agent/charging/types.js';
import { createTelemetryPipeline } from '../agent/telemetry/pipeline.js';
import { chargingSession } from '../agent/telemetry/testing/charging-session.js';
import { requireBrokers, startPrivateServices } from './support/services.js';

const CP = 'CP-MQTT';
const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const uniquePrefix = () => `test-${randomBytes(4).toString('hex')}`;

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A client subscribed to `filter` (SUBACK awaited) that records every message. */
async function subscribe(url: string, filter: string) {
  const client = connect(url, { reconnectPeriod: 0, clientId: `test-sub-${randomBytes(4).toString('hex')}` });
  cleanups.push(() => client.end(true));
  const received: Received[] = [];
  const waiters: Array<{ check: () => boolean; resolve: () => void }> = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString(), retain: packet.retain });
    for (const waiter of waiters.splice(0)) (waiter.check() ? waiter.resolve() : waiters.push(waiter));
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(filter, { qos: 1 });
  const until = (check: () => boolean) =>
    check() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ check, resolve }));
  return { client, received, until };
}

/** The retained message on `topic` as a fresh client sees it. */
async function retained(url: string, topic: string): Promise<Received> {
  const { client, received, until } = await subscribe(url, topic);
  await until(() => received.length > 0);
  client.end(true);
  return received[0]!;
}

/**
 * A loopback TCP relay in front of the broker whose gate the test opens: after a broker restart the
 * test's own subscriber reconnects first, so nothing the agent flushes on reconnect is published
 * before anyone listens (the broker keeps no sessions: persistence is off).
 */
async function gatedRelay(brokerUrl: string): Promise<{ url: string; open: boolean; server: Server }> {
  const upstream = new URL(brokerUrl);
  const relay = { url: '', open: true, server: undefined as unknown as Server };
  const sockets = new Set<Socket>();
  relay.server = createServer((client) => {
    if (!relay.open) return client.destroy();
    const broker = new Socket();
    sockets.add(client).add(broker);
    broker.connect(Number(upstream.port), upstream.hostname);
    client.pipe(broker).pipe(client);
    const close = () => (client.destroy(), broker.destroy());
    client.on('error', close).on('close', close);
    broker.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
  relay.url = `mqtt://127.0.0.1:${(relay.server.address() as { port: number }).port}`;
  cleanups.push(() => {
    relay.server.close();
    for (const socket of sockets) socket.destroy();
  });
  return relay;
}

describe('telemetry to a real Mosquitto', () => {
  it('publishes /online true and the status retained, and the broker publishes the last will (false, retained) when the agent is killed', { timeout: 60_000 }, async () => {
    const { mqttUrl } = requireBrokers();
    const prefix = uniquePrefix();
    const topics = mqttTopics({ prefix }, CP);
    const watcher = await subscribe(mqttUrl, `${topics.base}/#`);
    const agent = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../agent/telemetry/testing/mqtt-agent.ts', import.meta.url)), mqttUrl, prefix, CP], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    cleanups.push(() => agent.kill('SIGKILL'));
    await watcher.until(() => watcher.received.some((m) => m.topic === topics.online && m.payload === 'true'));
    await watcher.until(() => watcher.received.some((m) => m.topic === topics.status));

    const online = await retained(mqttUrl, topics.online);
    assert.deepEqual(online, { topic: topics.online, payload: 'true', retain: true });
    const status = await retained(mqttUrl, topics.status);
    assert.equal(status.retain, true);
    assert.deepEqual(JSON.parse(status.payload), { cp_id: CP, state: 'Available' });

    agent.kill('SIGKILL');
    await watcher.until(() => watcher.received.some((m) => m.topic === topics.online && m.payload === 'false'));
    const will = await retained(mqttUrl, topics.online);
    assert.deepEqual(will, { topic: topics.online, payload: 'false', retain: true }, 'the last will, retained');
  });

  it('a clean stop publishes /online false itself', { timeout: 30_000 }, async () => {
    const { mqttUrl } = requireBrokers();
    const prefix = uniquePrefix();
    const topics = mqttTopics({ prefix }, CP);
    const watcher = await subscribe(mqttUrl, topics.online);
    const { mqtt } = configSchema.parse({ cpId: CP, stateDir: '/nonexistent', mqtt: { url: mqttUrl, prefix } });
    const sink = createMqttSink(mqtt, CP, createMemoryLogger(), { clientId: `charger-agent-${prefix}` });
    cleanups.push(() => sink.stop());
    await sink.start();
    await watcher.until(() => watcher.received.some((m) => m.payload === 'true'));
    await sink.stop();
    await watcher.until(() => watcher.received.some((m) => m.payload === 'false'));
    assert.deepEqual(await retained(mqttUrl, topics.online), { topic: topics.online, payload: 'false', retain: true });
  });

  it('maps command topics to protocol lines when mqtt.commands is on, answers on cmd/reply, and refuses injected or retained commands', { timeout: 30_000 }, async () => {
    const { mqttUrl } = requireBrokers();
    const prefix = uniquePrefix();
    const topics = mqttTopics({ prefix }, CP);
    const replies = await subscribe(mqttUrl, topics.reply);
    const lines: string[] = [];
    const { mqtt } = configSchema.parse({ cpId: CP, stateDir: '/nonexistent', mqtt: { url: mqttUrl, prefix, commands: true } });
    const log = createMemoryLogger();
    const sink = createMqttSink(mqtt, CP, log, {
      clientId: `charger-agent-${prefix}`,
      onCommand: (line) => {
        lines.push(line);
        return `ACK#${line.split('#')[0]}`;
      },
    });
    cleanups.push(() => sink.stop());
    const publisher = connect(mqttUrl, { reconnectPeriod: 0 });
    cleanups.push(() => publisher.end(true));
    await new Promise((resolve) => publisher.once('connect', resolve));
    const send = (name: string, payload: string, retain = false) => publisher.publishAsync(`${topics.base}/cmd/${name}`, payload, { qos: 1, retain });
    // A stop left retained on the broker is replayed when the sink subscribes: it must not run.
    await send('stop', 'stale', true);
    cleanups.push(() => send('stop', '', true)); // an empty retained message clears it
    await sink.start();
    await replies.until(() => replies.received.length >= 1); // also proves the sink's subscription is in place
    await send('authorize', 'DRIVER-1\nPARAR');
    await send('authorize', ' DRIVER-1 ');
    await send('stop', '');
    await send('resume', '');
    await replies.until(() => replies.received.length >= 5);
    assert.deepEqual(lines, ['AUTORIZAR_SUMINISTRO#DRIVER-1', 'PARAR', 'REANUDAR']);
    assert.deepEqual(
      replies.received.map((m) => m.payload),
      ['NACK#PARAR#RETAINED', 'NACK#AUTORIZAR_SUMINISTRO#BAD_ID', 'ACK#AUTORIZAR_SUMINISTRO', 'ACK#PARAR', 'ACK#REANUDAR'],
    );
    assert.ok(log.lines.some((line) => line.event === 'command_rejected' && line.fields.reason === 'retained'));
  });

  it('while the broker is unreachable, holds at most mqtt.offlineQueueMax messages, dropping the oldest meter samples first and keeping session events', { timeout: 30_000 }, async () => {
    const { mqttUrl } = requireBrokers();
    const relay = await gatedRelay(mqttUrl);
    relay.open = false;
    const prefix = uniquePrefix();
    const topics = mqttTopics({ prefix }, CP);
    const watcher = await subscribe(mqttUrl, `${topics.base}/+`);
    const { mqtt } = configSchema.parse({ cpId: CP, stateDir: '/nonexistent', mqtt: { url: relay.url, prefix, offlineQueueMax: 5 } });
    const sink = createMqttSink(mqtt, CP, createMemoryLogger(), { clientId: `charger-agent-${prefix}` });
    cleanups.push(() => sink.stop());
    await sink.start();
    for (let n = 1; n <= 10; n += 1) {
      sink.publish('meter', `{"n":${n}}`);
      if (n % 4 === 0) sink.publish('session', `{"session":${n}}`);
    }
    assert.deepEqual({ ...sink.status(), lastError: undefined }, { enabled: true, connected: false, lastError: undefined, queued: 5, droppedMeter: 7 });
    relay.open = true;
    await watcher.until(() => watcher.received.filter((m) => m.topic !== topics.online).length >= 5);
    assert.deepEqual(
      watcher.received.filter((m) => m.topic !== topics.online).map((m) => `${m.topic.slice(topics.base.length + 1)} ${m.payload}`),
      ['session {"session":4}', 'meter {"n":8}', 'session {"session":8}', 'meter {"n":9}', 'meter {"n":10}'],
      'both session events and the three newest samples, in the order they were published',
    );
  });

  it('the retained status is complete from the first one and changes with the state atomically: never Available with a session', { timeout: 60_000 }, async () => {
    const { mqttUrl } = requireBrokers();
    const prefix = uniquePrefix();
    const topics = mqttTopics({ prefix }, CP);
    const stateDir = mkdtempSync(join(tmpdir(), 'charger-mqtt-'));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const config = configSchema.parse({ cpId: CP, stateDir, mqtt: { url: mqttUrl, prefix } });
    const pipeline = createTelemetryPipeline({ config, log: createMemoryLogger() });
    cleanups.push(() => pipeline.stop(0));
    const watcher = await subscribe(mqttUrl, topics.status);
    await pipeline.start();
    pipeline.publishStatus({ state: 'Available', in_service: true, faults: [] });
    await watcher.until(() => watcher.received.length > 0); // connected: from now on every status goes out as it is made

    // The core's steps as the controller runs them: each step's events published together.
    const core: CoreConfig = { cpId: CP, pricePerKwh: 0.2, authorizationTimeoutMs: 60_000, consumoIntervalMs: 1000, meterStaleMs: 10_000, feedbackTimeoutMs: 500, hasFeedback: true, finalReadingWaitMs: 2500 };
    let state = initialState();
    let nowMs = Date.now();
    const reading = (importKwh: number) => ({ importKwh, powerW: 7400, voltageV: [230], currentA: [32], phasePowerW: [7400], takenAtMs: nowMs });
    const steps: CoreEvent[] = [
      { type: 'meter_reading', reading: reading(10) },
      { type: 'authorize', driverId: 'DRIVER-ATOMIC' },
      { type: 'plug', present: true },
      { type: 'relay_feedback', closed: true },
      { type: 'meter_reading', reading: reading(10.002) },
      { type: 'plug', present: false },
      { type: 'relay_feedback', closed: false },
      { type: 'meter_reading', reading: reading(10.003) },
    ];
    for (const event of steps) {
      nowMs += 100;
      if (event.type === 'meter_reading') event.reading.takenAtMs = nowMs;
      const step = next(core, state, event, nowMs);
      state = step.state;
      for (const action of step.actions) if (action.type === 'telemetry') pipeline.publish(action.event);
      const change = step.actions.find((a) => a.type === 'telemetry' && a.event.type === 'CP_STATUS');
      const count = watcher.received.length;
      // the next step comes once this one's status is out, as a pin or the meter would, later
      if (change) await watcher.until(() => watcher.received.length > count);
    }

    const statuses = watcher.received.map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    assert.deepEqual(statuses[0], { cp_id: CP, state: 'Available', in_service: true, faults: [] }, 'the first status is complete');
    for (const status of statuses) {
      assert.ok(['state', 'in_service', 'faults'].every((field) => field in status), `complete: ${JSON.stringify(status)}`);
      const withSession = status.session_id !== undefined;
      assert.equal(withSession, ['Authorized', 'Charging', 'Finishing'].includes(String(status.state)), `state and session agree: ${JSON.stringify(status)}`);
    }
    const authorized = statuses.find((status) => status.state === 'Authorized');
    assert.equal(authorized?.user_id, 'DRIVER-ATOMIC', 'Authorized shows its session at once');
    assert.deepEqual(
      statuses.map((status) => status.state),
      ['Available', 'Authorized', 'Charging', 'Finishing', 'Available'],
    );
  });

  it('Mosquitto stopped for 30 s mid-session: every session event arrives after the restart and the status is retained again', { timeout: 300_000 }, async (t) => {
    const services = await startPrivateServices((message) => t.diagnostic(message));
    cleanups.push(() => services.stop());
    const relay = await gatedRelay(services.mqttUrl);
    const prefix = uniquePrefix();
    const topics = mqttTopics({ prefix }, CP);
    const stateDir = mkdtempSync(join(tmpdir(), 'charger-mqtt-'));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const config = configSchema.parse({ cpId: CP, stateDir, mqtt: { url: relay.url, prefix, meterIntervalMs: 1000 } });
    const log = createMemoryLogger();
    const pipeline = createTelemetryPipeline({ config, log });
    cleanups.push(() => pipeline.stop(0)); // also when an assertion fails first: no client left reconnecting
    let watcher = await subscribe(services.mqttUrl, `${topics.base}/#`);
    await pipeline.start();

    // Short sessions one after the other, one event a second, so session events fall in the outage too.
    const events = Array.from({ length: 12 }, (_, n) =>
      chargingSession({ cpId: CP, driverId: `DRIVER-${n}`, startMs: Date.now() + n * 10_000, seconds: 3, sessionNo: n }),
    ).flatMap((session) => session.map(({ event }) => event));
    const sessionIds: string[] = [];
    let published = 0;
    // a figure, not a claim: that publish() does not wait for a broker is pinned by pipeline.test.ts
    const longestMs = { session: 0, consumo: 0 }; // session events are committed (fsync) inside publish()
    const publishNext = () => {
      const event = events[published++];
      if (!event) return;
      const started = performance.now();
      pipeline.publish(event);
      pipeline.publishReading({ importKwh: event.meter_import_kwh ?? 1, powerW: 7400, voltageV: [230], currentA: [32], phasePowerW: [7400], takenAtMs: Date.now() }, 'Charging');
      const kind = event.type === 'CONSUMO' ? 'consumo' : 'session';
      longestMs[kind] = Math.max(longestMs[kind], performance.now() - started);
      if (event.type === 'SESSION_STARTED' || event.type === 'SUPPLY_END') sessionIds.push(`${event.session_id}/${event.type}`);
    };
    const ticker = setInterval(publishNext, 1000);
    cleanups.push(() => clearInterval(ticker));

    await sleep(5_000);
    relay.open = false;
    watcher.client.end(true);
    await services.stopMqtt();
    const downAt = sessionIds.length;
    await sleep(30_000);
    const during = pipeline.status().mqtt;
    await services.startMqtt();
    const upAt = sessionIds.length;
    const heard: Received[] = [...watcher.received];
    watcher = await subscribe(services.mqttUrl, `${topics.base}/#`);
    relay.open = true;
    await sleep(10_000);
    clearInterval(ticker);
    const expected = [...sessionIds];
    const sessionMessages = () => [...heard, ...watcher.received].filter((m) => m.topic === topics.session).map((m) => JSON.parse(m.payload));
    const key = (event: { session_id: string; type: string }) => `${event.session_id}/${event.type}`;
    await watcher.until(() => new Set(sessionMessages().map(key)).size >= expected.length);

    const received = sessionMessages();
    const unique = [...new Map(received.map((event) => [event.id, event])).values()];
    t.diagnostic(`${expected.length} session events published, ${upAt - downAt} of them while Mosquitto was down (queued then: ${during.queued})`);
    t.diagnostic(`received ${received.length} on /session, ${received.length - unique.length} duplicate(s) (QoS 1 is at least once; same id)`);
    t.diagnostic(`longest publish() + publishReading(): ${longestMs.consumo.toFixed(2)} ms for a CONSUMO, ${longestMs.session.toFixed(2)} ms for a session event (committed before it returns)`);
    assert.equal(during.connected, false);
    assert.ok(upAt - downAt >= 4, 'session events were published during the outage');
    assert.deepEqual(unique.map(key), expected, 'every session event, in order');
    assert.deepEqual(unique.map((event) => event.seq), [...unique.map((event) => event.seq)].sort((a, b) => a - b));
    for (const event of received) assert.deepEqual(event, unique.find((u) => u.id === event.id), 'a duplicate is the same message');

    const status = await retained(services.mqttUrl, topics.status);
    assert.equal(status.retain, true, 'the restarted broker has the retained status again');
    assert.equal(JSON.parse(status.payload).cp_id, CP);
    assert.deepEqual(await retained(services.mqttUrl, topics.online), { topic: topics.online, payload: 'true', retain: true });
    assert.ok(log.lines.some((line) => line.event === 'mqtt_down'));
    assert.ok(log.lines.some((line) => line.event === 'mqtt_up'));
    await pipeline.stop();
  });
});
