import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { TelemetryEvent } from '../charging/types.js';
import { configSchema, type ConfigInput } from '../config/schema.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { createTelemetryPipeline } from './pipeline.js';
import { chargingSession } from './testing/charging-session.js';
import { FakeKafkaSink, FakeMqttSink } from './testing/fake-sinks.js';

const CP = 'CP-P';
const T0 = Date.parse('2025-03-01T10:00:00Z');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function setup(overrides: Partial<ConfigInput> = {}, stateDir = mkdtempSync(join(tmpdir(), 'charger-pipeline-'))) {
  dirs.push(stateDir);
  const config = configSchema.parse({
    cpId: CP,
    stateDir,
    kafka: { sendTimeoutMs: 200 },
    store: { consumoFlushMs: 30_000 },
    ...overrides,
  });
  const clock = { ms: T0 };
  const log = createMemoryLogger();
  const kafka = new FakeKafkaSink();
  const mqtt = new FakeMqttSink();
  const pipeline = createTelemetryPipeline({ config, log, now: () => clock.ms, kafkaSink: kafka, mqttSink: mqtt });
  return { config, clock, log, kafka, mqtt, pipeline, stateDir };
}

const status = (n: number): TelemetryEvent => ({
  type: 'CP_STATUS',
  cp_id: CP,
  ts: new Date(T0 + n).toISOString(),
  state: n % 2 ? 'Charging' : 'Available',
});

function assertInSeqOrderWithoutDuplicates(seqs: number[]): void {
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
}

describe('telemetry pipeline', () => {
  it('delivers a session to Kafka in seq order, keyed by cp_id, with seq and id, without duplicates', async () => {
    const { kafka, pipeline, clock } = setup();
    await pipeline.start();
    const session = chargingSession({ cpId: CP, driverId: 'DRIVER-42', startMs: T0, seconds: 30 });
    for (const { atMs, event } of session) {
      clock.ms = atMs;
      pipeline.publish(event);
    }
    await kafka.until(() => kafka.delivered.length >= session.length);
    const events = kafka.events();
    assert.deepEqual(events.map((event) => event.seq), session.map((_, index) => index + 1));
    assert.deepEqual(events.map((event) => event.type), session.map(({ event }) => event.type));
    assert.ok(kafka.delivered.every((message) => message.key === CP && message.topic === 'cp_telemetry'));
    assert.match(events[0]!.id, /^CP-P-[0-9a-f]{8}-1$/);
    const end = events.at(-1 - 1)!;
    assert.equal(end.type, 'SUPPLY_END');
    assert.equal(end.kwh, session.at(-2)!.event.kwh);
    assert.equal(end.importe, session.at(-2)!.event.importe);
    await pipeline.stop();
    assert.equal(kafka.delivered.length, session.length, 'nothing sent twice');
  });

  it('keeps accepting events while Kafka is down, then drains the backlog oldest first before newer events', async () => {
    const { kafka, pipeline } = setup();
    kafka.script = ['fail', 'fail', 'fail'];
    await pipeline.start();
    for (let n = 1; n <= 50; n += 1) pipeline.publish(status(n));
    await kafka.until(() => kafka.delivered.length >= 1);
    for (let n = 51; n <= 60; n += 1) pipeline.publish(status(n));
    await kafka.until(() => kafka.delivered.length >= 60);
    const seqs = kafka.events().map((event) => event.seq);
    assert.deepEqual(seqs, Array.from({ length: 60 }, (_, index) => index + 1));
    assert.ok(kafka.sends >= 4, 'the failed batches were retried');
    await pipeline.stop();
  });

  it('retries a send that never settles, and publish() is not held up by it', async () => {
    const { kafka, pipeline, log } = setup();
    kafka.script = ['hang'];
    await pipeline.start();
    pipeline.publish(status(1));
    pipeline.publish(status(2));
    await kafka.until(() => kafka.delivered.length >= 2);
    assertInSeqOrderWithoutDuplicates(kafka.events().map((event) => event.seq));
    assert.equal(kafka.sends, 2, 'one hung send, then one that went through');
    assert.equal(log.lines.filter((line) => line.event === 'store_error').length, 0);
    await pipeline.stop();
  });

  it('publish() returns, with the event queued, while the send before it is still waiting for Kafka', async () => {
    const { kafka, pipeline } = setup();
    kafka.script = ['hold'];
    await pipeline.start();
    pipeline.publish(status(1));
    await kafka.until(() => kafka.heldSends === 1);
    // the drain loop now waits on a send that only the test can settle: publish() must not wait on it
    const returned = [pipeline.publish(status(2)), pipeline.publish(status(3))];
    assert.equal(pipeline.status().outbox.depth, 3, 'the events published during the send are queued behind it');
    assert.deepEqual(await Promise.all(returned), [true, true], "publish()'s promise resolves on the commit, not on Kafka");
    assert.equal(kafka.heldSends, 1, 'the first send is still pending');
    assert.equal(kafka.delivered.length, 0, 'nothing acknowledged yet');
    kafka.release();
    await kafka.until(() => kafka.delivered.length >= 3);
    assert.deepEqual(kafka.events().map((event) => event.seq), [1, 2, 3]);
    await pipeline.stop();
  });

  it('after a crash, sends again only what Kafka had not acknowledged, under the same id', async () => {
    const first = setup();
    first.kafka.script = ['ack', 'deliver-then-fail', 'deliver-then-fail'];
    first.kafka.otherwise = 'hang';
    await first.pipeline.start();
    await first.pipeline.publish(status(1));
    await first.kafka.until(() => first.kafka.delivered.length >= 1);
    first.pipeline.publish(status(2));
    first.pipeline.publish(status(3));
    await first.kafka.until(() => new Set(first.kafka.events().map((event) => event.seq)).size >= 3);
    // status 2 and 3 reached the broker but their acknowledgement was lost; then the process "dies":
    // the first pipeline is abandoned, not stopped, and a second one opens the same state directory.
    const second = setup({}, first.stateDir);
    await second.pipeline.start();
    second.pipeline.publish(status(4));
    await second.kafka.until(() => second.kafka.delivered.length >= 3);
    const before = [...new Map(first.kafka.events().map((event) => [event.seq, event])).values()];
    const resent = second.kafka.events();
    assert.deepEqual(resent.map((event) => event.seq).slice(0, 2), [2, 3], 'the unacknowledged ones, first and in order');
    assert.deepEqual(resent.slice(0, 2), before.slice(1, 3), 'byte for byte the same messages, same ids');
    assert.ok(!resent.some((event) => event.seq === 1), 'the acknowledged one is not sent again');
    assert.equal(resent[2]!.seq, 4, 'a new event follows the last seq: never reused, no gap');
    assert.notEqual(resent[2]!.id, before[2]!.id);
    await second.pipeline.stop();
    await first.pipeline.stop(0);
  });

  it('stop() sends what is waiting when Kafka is up, and keeps it for the next start when Kafka is down', async () => {
    const up = setup();
    await up.pipeline.start();
    for (let n = 1; n <= 20; n += 1) up.pipeline.publish(status(n));
    await up.pipeline.stop();
    assert.equal(up.kafka.delivered.length, 20);

    const down = setup();
    down.kafka.otherwise = 'fail';
    await down.pipeline.start();
    const session = chargingSession({ cpId: CP, driverId: 'D1', startMs: T0, seconds: 5 });
    for (const { event } of session) down.pipeline.publish(event);
    await down.pipeline.stop(500);
    const later = setup({}, down.stateDir);
    await later.pipeline.start();
    await later.kafka.until(() => later.kafka.delivered.length >= session.length);
    assert.deepEqual(
      later.kafka.events().map((event) => event.type),
      session.map(({ event }) => event.type),
      'every event, CONSUMO included (committed at stop)',
    );
    await later.pipeline.stop();
  });

  it('reports the depth, age and size of the backlog in status()', async () => {
    const { kafka, pipeline, clock } = setup();
    kafka.otherwise = 'fail';
    await pipeline.start();
    await pipeline.publish(status(1));
    clock.ms += 90_000;
    await pipeline.publish(status(2));
    const { outbox } = pipeline.status();
    assert.equal(outbox.depth, 2);
    assert.equal(outbox.oldestAgeMs, 90_000);
    assert.ok(outbox.bytes > 0);
    await pipeline.stop(0);
  });

  it('closes an interrupted session at start and delivers its SUPPLY_END to Kafka and MQTT', async () => {
    const crashed = setup();
    crashed.kafka.otherwise = 'hang';
    await crashed.pipeline.start();
    const session = chargingSession({ cpId: CP, driverId: 'D9', startMs: T0, seconds: 90 });
    const published: Array<Promise<boolean>> = [];
    for (const { atMs, event } of session.filter(({ event }) => event.type !== 'SUPPLY_END' && event.state !== 'Finishing' && event.state !== 'Available')) {
      crashed.clock.ms = atMs;
      published.push(crashed.pipeline.publish(event));
    }
    await Promise.all(published); // the session events are committed: then the process "dies"
    const restarted = setup({}, crashed.stateDir);
    const [interrupted] = await restarted.pipeline.recoverInterrupted();
    assert.equal(interrupted?.event.reason, 'interrupted');
    assert.equal(await restarted.pipeline.sessionCount(), 1);
    await restarted.pipeline.start();
    await restarted.kafka.until(() => restarted.kafka.events().some((event) => event.type === 'SUPPLY_END'));
    const end = restarted.kafka.events().find((event) => event.type === 'SUPPLY_END')!;
    assert.equal(end.id, interrupted?.event.id);
    assert.equal(end.session_id, session[0]!.event.session_id);
    assert.equal(end.kwh, (await restarted.pipeline.listSessions(1))[0]?.kwh, 'with the kWh of its last durable reading');
    assert.deepEqual(restarted.mqtt.of('session').map((event) => event.reason), ['interrupted']);
    await restarted.pipeline.stop();
    await crashed.pipeline.stop(0);
  });

  it('with Kafka off, queues nothing and still keeps the ledger and feeds MQTT', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'charger-pipeline-'));
    dirs.push(stateDir);
    const config = configSchema.parse({ cpId: CP, stateDir });
    const mqtt = new FakeMqttSink();
    const pipeline = createTelemetryPipeline({ config, log: createMemoryLogger(), mqttSink: mqtt });
    await pipeline.start();
    const published = chargingSession({ cpId: CP, driverId: 'D1', startMs: T0, seconds: 5 }).map(({ event }) => pipeline.publish(event));
    const kept = await Promise.all(published);
    assert.deepEqual(kept.map((ok, i) => (ok ? '' : String(i))).filter(Boolean), [], 'each event kept (session events committed)');
    const { kafka, outbox } = pipeline.status();
    assert.deepEqual(kafka, { enabled: false, connected: false });
    assert.equal(outbox.depth, 0);
    assert.equal((await pipeline.listSessions(1))[0]?.endReason, 'unplugged');
    assert.deepEqual(mqtt.of('session').map((event) => event.type), ['SESSION_STARTED', 'SUPPLY_END']);
    await pipeline.stop();
  });

  it('feeds MQTT: session events on /session, the state on /status, readings on /meter at their own rate', async () => {
    const { mqtt, pipeline, clock } = setup({ mqtt: { meterIntervalMs: 5000 } });
    await pipeline.start();
    await pipeline.sessionCount(); // the store has opened: from here an event is numbered, and reaches MQTT, in its own step
    const reading = (atMs: number) => ({ importKwh: 10, powerW: 7400, voltageV: [230], currentA: [32], phasePowerW: [7400], takenAtMs: atMs });
    const stepDone = () => new Promise((resolve) => setImmediate(resolve));
    for (let second = 0; second < 12; second += 1) {
      clock.ms = T0 + second * 1000;
      pipeline.publishReading(reading(clock.ms), 'Available');
    }
    await stepDone();
    assert.equal(mqtt.of('status').length, 0, 'no status before state, in_service and faults are known');
    pipeline.publishStatus({ state: 'Available', in_service: true, faults: [] });
    await stepDone();
    const published: Array<Promise<boolean>> = [];
    for (const { atMs, event } of chargingSession({ cpId: CP, driverId: 'D1', startMs: T0 + 20_000, seconds: 3 })) {
      if (atMs !== clock.ms) await stepDone(); // the events of one core step share its time
      clock.ms = atMs;
      published.push(pipeline.publish(event));
    }
    await stepDone();
    await Promise.all(published);
    assert.equal(mqtt.of('meter').length, 3, 'readings at 0 s, 5 s and 10 s');
    assert.deepEqual(mqtt.of('session').map((event) => event.type), ['SESSION_STARTED', 'SUPPLY_END']);
    const statuses = mqtt.of('status');
    assert.deepEqual(statuses[0], { cp_id: CP, state: 'Available', in_service: true, faults: [] });
    for (const status of statuses) {
      assert.equal(status.session_id !== undefined, ['Authorized', 'Charging', 'Finishing'].includes(String(status.state)), JSON.stringify(status));
    }
    assert.ok(statuses.some((state) => state.state === 'Charging' && state.session_id !== undefined));
    assert.equal(statuses.at(-1)?.state, 'Available');
    assert.equal(statuses.at(-1)?.session_id, undefined);
    await pipeline.stop();
  });
});
