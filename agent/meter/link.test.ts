import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import type { MeterQos } from '../snapshot.js';
import { DriverError, type EnergyMeter, type MeterReading } from '../../drivers/types.js';
import { MeterLink, qosClassOf, type MeterLinkSettings } from './link.js';
import { ManualClock } from '../../drivers/meter/testing/manual-clock.js';

const START_MS = 1_700_000_000_000;

const SETTINGS: MeterLinkSettings = {
  pollIntervalMs: 1000,
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  breakerMaxReopensPerHour: 10,
  breakerPauseMs: 300_000,
  staleIdleMs: 600_000,
  meterStaleMs: 10_000,
  maxConsecutiveErrors: 15,
  reopenAfterMs: 1_800_000,
  qosWindowMs: 10_000,
};

type ReadOutcome = 'ok' | 'timeout' | 'crc' | 'io' | 'same-as-before' | 'backwards' | 'hang';

/** A fake meter world: how opens and reads go is set by the test, and every call is recorded. */
interface RigOptions {
  settings?: Partial<MeterLinkSettings>;
  openFailures?: number;
  read?: (n: number) => ReadOutcome;
  random?: () => number;
  onQosChange?: (qos: MeterQos) => void;
}

function rig(options: RigOptions = {}) {
  const clock = new ManualClock(START_MS);
  const log = createMemoryLogger();
  const world = {
    openFailures: options.openFailures ?? 0,
    read: options.read ?? ((): ReadOutcome => 'ok'),
    openAttemptsMs: [] as number[],
    closes: 0,
    reads: 0,
    lastServed: undefined as MeterReading | undefined,
  };
  const errors: Record<Exclude<ReadOutcome, 'ok' | 'same-as-before' | 'backwards' | 'hang'>, DriverError> = {
    timeout: new DriverError('METER_TIMEOUT', 'no answer from unit 1 on /dev/ttyUSB0 within 500 ms', { kind: 'timeout' }),
    crc: new DriverError('METER_CRC', 'bad CRC in the answer of unit 1 on /dev/ttyUSB0', { kind: 'crc' }),
    io: new DriverError('METER_IO', 'unit 1 on /dev/ttyUSB0: the port was lost', { kind: 'io' }),
  };
  const createMeter = (): EnergyMeter => ({
    open: async () => {
      world.openAttemptsMs.push(clock.now());
      if (world.openFailures > 0) {
        world.openFailures -= 1;
        throw new DriverError('METER_PORT_MISSING', '/dev/ttyUSB0 does not exist', { kind: 'io' });
      }
    },
    close: async () => {
      world.closes += 1;
    },
    read: async () => {
      const outcome = world.read(world.reads++);
      if (outcome === 'hang') return new Promise<MeterReading>(() => undefined);
      if (outcome === 'same-as-before' && world.lastServed) return world.lastServed;
      if (outcome === 'backwards') return { ...world.lastServed!, importKwh: world.lastServed!.importKwh - 1, takenAtMs: clock.now() };
      if (outcome !== 'ok' && outcome !== 'same-as-before') throw errors[outcome];
      const nowMs = clock.now();
      world.lastServed = { importKwh: 1000 + (nowMs - START_MS) / 3_600_000, powerW: 1000, voltageV: [230], currentA: [4.3], phasePowerW: [1000], takenAtMs: nowMs };
      return world.lastServed;
    },
  });
  const readings: MeterReading[] = [];
  const link = new MeterLink({
    createMeter,
    settings: { ...SETTINGS, ...options.settings },
    log,
    clock,
    // 1 is just outside [0, 1): each wait is its whole ceiling, so gaps show the exponential steps.
    random: options.random ?? (() => 1),
    onReading: (reading) => readings.push(reading),
    onQosChange: options.onQosChange,
    logFields: { path: '/dev/ttyUSB0', unit: 1 },
  });
  const events = (name: string) => log.lines.filter((line) => line.event === name);
  return { clock, log, world, link, readings, events };
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

test('QoS classes: healthy from 90 %, degraded from 50 %, critical above 0, down at 0', () => {
  assert.deepEqual(
    [1, 0.9, 0.89, 0.5, 0.49, 0.01, 0].map(qosClassOf),
    ['healthy', 'healthy', 'degraded', 'degraded', 'critical', 'critical', 'down'],
  );
});

test('a link whose first open fails starts anyway, keeps retrying and reads once the port appears', async () => {
  const { clock, link, world, readings, events } = rig({ openFailures: 3 });
  await link.start();
  assert.equal(readings.length, 0);
  assert.equal(link.qos().connected, false);
  await clock.advanceUntil(() => readings.length > 0, 60_000, 100);
  assert.equal(world.openAttemptsMs.length, 4);
  assert.equal(events('meter_down').length, 1, 'the outage is logged once');
  assert.equal(events('meter_down')[0]!.fields.code, 'METER_PORT_MISSING');
  assert.equal(events('meter_up').length, 1);
  assert.equal(link.qos().connected, true);
  await link.stop();
});

test('retries back off exponentially up to the cap', async () => {
  const { clock, link, world } = rig({ openFailures: 1_000, settings: { breakerMaxReopensPerHour: 1_000 } });
  await link.start();
  await clock.advance(400_000);
  assert.deepEqual(gaps(world.openAttemptsMs).slice(0, 9), [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  await link.stop();
});

test('the backoff is jittered over the whole of its step (full jitter)', async () => {
  const { clock, link, world } = rig({ openFailures: 1_000, random: () => 0.25, settings: { breakerMaxReopensPerHour: 1_000 } });
  await link.start();
  await clock.advance(100_000);
  assert.deepEqual(gaps(world.openAttemptsMs).slice(0, 4), [250, 500, 1000, 2000]);
  await link.stop();
});

test('a good reading resets the backoff to its first step', async () => {
  const script: ReadOutcome[] = ['ok', 'timeout', 'timeout', 'timeout', 'ok', 'timeout'];
  const readsAtMs: number[] = [];
  const { clock, link } = rig({
    read: (n) => {
      readsAtMs.push(clock.now());
      return script[n] ?? 'ok';
    },
    settings: { maxConsecutiveErrors: 1_000 },
  });
  await link.start();
  await clock.advanceUntil(() => readsAtMs.length >= 7, 60_000, 100);
  assert.deepEqual(gaps(readsAtMs).slice(0, 6), [1000, 1000, 2000, 4000, 1000, 1000]);
  await link.stop();
});

test('the breaker pauses after the allowed reopenings in an hour, then tries once per pause', async () => {
  const settings = { breakerMaxReopensPerHour: 3, breakerPauseMs: 300_000, backoffMaxMs: 1000 };
  const { clock, link, world, events } = rig({ openFailures: 1_000, settings });
  await link.start();
  await clock.advance(4_500);
  assert.deepEqual(gaps(world.openAttemptsMs), [1000, 1000, 1000], 'the first opening and 3 reopenings');
  assert.equal(events('meter_breaker_open').length, 1);
  assert.equal(events('meter_breaker_open')[0]!.fields.pause_ms, 300_000);
  await clock.advance(299_000);
  assert.equal(world.openAttemptsMs.length, 4, 'nothing during the pause');
  assert.equal(link.qos().qosClass, 'down', 'with no request in the window, the latest (failed) one counts');
  await clock.advance(2_000);
  assert.equal(world.openAttemptsMs.length, 5, 'one probe after the pause');
  assert.equal(world.openAttemptsMs[4], START_MS + 4_000 + 300_000);
  assert.equal(events('meter_breaker_open').length, 2, 'the failed probe opens the breaker again');
  await clock.advance(200_000);
  assert.equal(world.openAttemptsMs.length, 5);
  await link.stop();
});

test('a meter without a good reading for meterStaleMs while charging is reopened', async () => {
  const settings = { maxConsecutiveErrors: 1_000, backoffMaxMs: 1_000 };
  const { clock, link, world, events } = rig({ read: (n) => (n < 3 ? 'ok' : 'timeout'), settings });
  link.setCharging(true);
  await link.start();
  await clock.advanceUntil(() => events('meter_reopen').length > 0, 30_000, 100);
  const reopen = events('meter_reopen')[0]!;
  assert.equal(reopen.fields.reason, 'stale');
  assert.equal(reopen.fields.charging, true);
  assert.ok((reopen.fields.silent_ms as number) >= 10_000 && (reopen.fields.silent_ms as number) < 12_000);
  assert.equal(world.closes, 1);
  await link.stop();
});

test('an idle meter gets ten minutes before the stale watchdog reopens it', async () => {
  const settings = { maxConsecutiveErrors: 1_000_000 };
  const { clock, link, events } = rig({ read: () => 'timeout', settings });
  await link.start();
  await clock.advance(590_000);
  assert.equal(events('meter_reopen').length, 0);
  await clock.advance(70_000);
  assert.equal(events('meter_reopen')[0]?.fields.reason, 'stale');
  await link.stop();
});

test('protocol errors in a row reopen the port, and the outage is logged once, not per failure', async () => {
  const settings = { maxConsecutiveErrors: 5, backoffMaxMs: 1000, breakerMaxReopensPerHour: 1000 };
  const { clock, link, events } = rig({ read: () => 'crc', settings });
  await link.start();
  await clock.advanceUntil(() => events('meter_reopen').length > 0, 60_000, 100);
  assert.equal(events('meter_reopen')[0]!.fields.reason, 'protocol_errors');
  assert.equal(events('meter_reopen')[0]!.fields.code, 'METER_CRC');
  assert.equal(events('meter_down').length, 1);
  await clock.advance(120_000);
  assert.equal(events('meter_down').length, 1);
  assert.ok(events('meter_still_down').length >= 1 && events('meter_still_down').length <= 3, 'a periodic count');
  await link.stop();
});

test('a lost port is reopened at once', async () => {
  const { clock, link, events, world } = rig({ read: (n) => (n === 2 ? 'io' : 'ok') });
  await link.start();
  await clock.advance(5_000);
  assert.equal(events('meter_reopen')[0]?.fields.reason, 'port_lost');
  assert.equal(world.openAttemptsMs.length, 2);
  await link.stop();
});

test('the port is reopened preventively after reopenAfterMs, without counting against the breaker', async () => {
  const { clock, link, events, world } = rig({ settings: { reopenAfterMs: 60_000, breakerMaxReopensPerHour: 1 } });
  await link.start();
  await clock.advance(250_000);
  const reasons = events('meter_reopen').map((line) => line.fields.reason);
  assert.deepEqual(reasons, ['preventive', 'preventive', 'preventive', 'preventive']);
  assert.equal(world.openAttemptsMs.length, 5);
  assert.equal(events('meter_breaker_open').length, 0);
  await link.stop();
});

test('a reading is passed on once: the same reading again is refused, never re-emitted', async () => {
  const { clock, link, readings } = rig({ read: (n) => (n >= 2 ? 'same-as-before' : 'ok') });
  await link.start();
  await clock.advance(5_000);
  assert.equal(readings.length, 2);
  assert.equal(new Set(readings.map((r) => r.takenAtMs)).size, 2);
  assert.equal(link.qos().errorsByKind.old_reading! > 0, true);
  await link.stop();
});

test('a billing register that runs backwards is refused', async () => {
  const { clock, link, readings } = rig({ read: (n) => (n === 2 ? 'backwards' : 'ok') });
  await link.start();
  await clock.advance(3_500);
  assert.equal(readings.length, 3);
  assert.ok(readings.every((r, i) => i === 0 || r.importKwh >= readings[i - 1]!.importKwh));
  assert.equal(link.qos().errorsByKind.implausible, 1);
  await link.stop();
});

test('QoS follows the window of the last qosWindowMs and logs each class change once', async () => {
  const script: ReadOutcome[] = [...Array<ReadOutcome>(10).fill('ok'), 'crc', 'crc', 'ok', 'crc', 'crc', 'crc', 'crc', 'crc', 'crc', 'crc', 'crc', 'crc'];
  const changes: string[] = [];
  const { clock, link, events } = rig({
    read: (n) => script[n] ?? 'ok',
    settings: { maxConsecutiveErrors: 1_000, backoffMaxMs: 1000 },
    onQosChange: (qos) => changes.push(qos.qosClass),
  });
  await link.start();
  await clock.advanceUntil(() => link.qos().reads >= 10, 60_000, 100);
  assert.equal(link.qos().qosClass, 'healthy');
  await clock.advanceUntil(() => link.qos().reads >= 12, 60_000, 100);
  assert.equal(link.qos().successRate, 0.8);
  assert.equal(link.qos().qosClass, 'degraded');
  await clock.advanceUntil(() => link.qos().reads >= 22, 60_000, 100);
  assert.equal(link.qos().successRate, 0.1);
  assert.equal(link.qos().qosClass, 'critical');
  assert.deepEqual(changes, ['degraded', 'critical']);
  assert.deepEqual(events('meter_qos').map((line) => line.fields.qos), ['degraded', 'critical']);
  assert.equal(link.qos().errorsByKind.crc, 11);
  await clock.advanceUntil(() => link.qos().qosClass === 'healthy', 60_000, 100);
  assert.equal(events('meter_qos').at(-1)!.priority, 'notice');
  await link.stop();
});

test('a port that never opens is down in QoS', async () => {
  const { clock, link } = rig({ openFailures: 1_000, settings: { backoffMaxMs: 1000, breakerMaxReopensPerHour: 1000 } });
  await link.start();
  await clock.advance(20_000);
  assert.equal(link.qos().qosClass, 'down');
  assert.equal(link.qos().errorsByKind.open! >= 10, true);
  await link.stop();
});

test('lastAliveMs stays current while the loop waits, and stops when a read hangs', async () => {
  let hang = false;
  const { clock, link, world } = rig({ read: () => (hang ? 'hang' : 'ok'), settings: { backoffMaxMs: 60_000 } });
  await link.start();
  await clock.advance(5_000);
  assert.equal(link.lastAliveMs, START_MS + 5_000);
  hang = true;
  await clock.advance(1_000);
  const stuckSinceMs = link.lastAliveMs;
  await clock.advance(10_000);
  assert.equal(link.lastAliveMs, stuckSinceMs, 'a hung read freezes it');
  await clock.advance(6_000);
  assert.ok(link.lastAliveMs > stuckSinceMs, 'the read deadline (15 s) frees the loop');
  assert.equal(link.qos().errorsByKind.hung, 1);
  const stopped = link.stop();
  await clock.advance(15_000);
  await stopped;
  assert.equal(world.closes, world.openAttemptsMs.length, 'every meter opened was closed');
});

test('stop() closes the meter and ends the loop', async () => {
  const { clock, link, world } = rig();
  await link.start();
  await clock.advance(5_000);
  await link.stop();
  assert.equal(world.closes, 1);
  const reads = world.reads;
  await clock.advance(10_000);
  assert.equal(world.reads, reads);
  assert.equal(clock.pending, 0);
});

test('charging brings a far-off retry forward', async () => {
  const { clock, link, world } = rig({ openFailures: 8, settings: { breakerMaxReopensPerHour: 1000 } });
  await link.start();
  await clock.advance(70_000);
  const attempts = world.openAttemptsMs.length;
  assert.equal(gaps(world.openAttemptsMs).at(-1), 32_000, 'the next retry is a minute away');
  link.setCharging(true);
  await clock.advance(0);
  assert.equal(world.openAttemptsMs.length, attempts + 1);
  await link.stop();
});

test('while a meter fault is pending, a silent meter is retried at the poll interval and its return seen within one', async () => {
  let silent = true;
  const { clock, link, world, readings } = rig({ read: () => (silent ? 'timeout' : 'ok'), settings: { maxConsecutiveErrors: 1_000 } });
  await link.start();
  await clock.advance(120_000);
  assert.equal(world.openAttemptsMs.length, 1, 'the port stays open: a silent meter is not reopened while idle');
  const readsBefore = world.reads;
  link.setRecovering(true);
  await clock.advance(10_000);
  assert.ok(world.reads - readsBefore >= 10, `retried at the poll interval (${world.reads - readsBefore} reads in 10 s)`);
  silent = false;
  const backAtMs = clock.now();
  await clock.advanceUntil(() => readings.length > 0, 5_000);
  assert.ok(clock.now() - backAtMs <= SETTINGS.pollIntervalMs, `seen ${clock.now() - backAtMs} ms after it answered again`);
  await link.stop();
});

test('recovery retries do not reopen the port more often, so they cannot trip the breaker', async () => {
  const { clock, link, world } = rig({ read: () => 'timeout', settings: { maxConsecutiveErrors: 1_000 } });
  await link.start();
  link.setRecovering(true);
  await clock.advance(300_000);
  assert.equal(world.openAttemptsMs.length, 1);
  await link.stop();
});

test('QoS is over the last qosWindowMs of time, not a count of requests: old failures age out on the clock', async () => {
  const failing = new Set([0, 1, 2, 3, 4]);
  const { clock, link } = rig({
    read: (n) => (failing.has(n) ? 'crc' : 'ok'),
    settings: { pollIntervalMs: 10_000, backoffMaxMs: 10_000, qosWindowMs: 60_000, meterStaleMs: 120_000, maxConsecutiveErrors: 1_000 },
  });
  await link.start();
  await clock.advanceUntil(() => link.qos().reads >= 6, 120_000, 1_000);
  const firstGoodMs = link.qos().lastGoodReadingMs!;
  assert.equal(link.qos().qosClass, 'critical');
  // Six requests a minute at this poll: a window of 100 requests would remember the failures for 16 minutes.
  await clock.advanceUntil(() => link.qos().successRate === 1, 300_000, 1_000);
  assert.ok(clock.now() - firstGoodMs <= 60_000, `clean ${clock.now() - firstGoodMs} ms after the first good reading`);
  assert.ok(link.qos().reads < 20, `${link.qos().reads} requests in all`);
  assert.equal(link.qos().qosClass, 'healthy');
  await link.stop();
});

test('a meter silent for meterStaleMs is not healthy even while its success rate is still 90 % or more', async () => {
  let silent = false;
  const changes: Array<MeterQos & { atMs: number }> = [];
  const { clock, link, events } = rig({
    read: () => (silent ? 'timeout' : 'ok'),
    settings: { qosWindowMs: 60_000, meterStaleMs: 10_000, backoffMaxMs: 60_000, maxConsecutiveErrors: 1_000 },
    onQosChange: (qos) => changes.push({ ...qos, atMs: clock.now() }),
  });
  await link.start();
  await clock.advance(120_000);
  assert.equal(link.qos().qosClass, 'healthy');
  silent = true;
  const silentFromMs = clock.now();
  // The backoff spreads the failures (1 s, 2 s, 4 s, 8 s …): the rate stays high while the meter is mute.
  await clock.advanceUntil(() => clock.now() - (link.qos().lastGoodReadingMs ?? 0) >= 12_000, 30_000, 100);
  const qos = link.qos();
  assert.ok(qos.successRate >= 0.9, `success rate ${qos.successRate} is what the old rule called healthy`);
  assert.equal(qos.qosClass, 'degraded');
  assert.equal(changes.at(-1)?.qosClass, 'degraded');
  const line = events('meter_qos').at(-1)!;
  assert.deepEqual([line.fields.qos, line.fields.stale, line.priority], ['degraded', true, 'warning']);
  assert.equal(changes.at(-1)!.atMs - qos.lastGoodReadingMs!, 10_000, 'the class drops when the stale limit passes, not at the next request');
  assert.ok(changes.at(-1)!.atMs - silentFromMs <= 11_000);
  silent = false;
  await clock.advanceUntil(() => link.qos().qosClass === 'healthy', 120_000, 100);
  assert.equal(events('meter_qos').at(-1)!.fields.qos, 'healthy');
  await link.stop();
});

test('while a meter_stale fault holds the charge point QoS is not healthy, and it is again once the fault clears', async () => {
  const { clock, link, events } = rig();
  await link.start();
  await clock.advance(20_000);
  assert.equal(link.qos().qosClass, 'healthy');
  link.setRecovering(true);
  assert.equal(link.qos().qosClass, 'degraded');
  assert.equal(events('meter_qos').at(-1)!.fields.qos, 'degraded');
  link.setRecovering(false);
  assert.equal(link.qos().qosClass, 'healthy');
  assert.equal(events('meter_qos').at(-1)!.fields.qos, 'healthy');
  await link.stop();
});

test('a link that lost its meter goes from healthy through the classes to down as good answers leave the window', async () => {
  let silent = false;
  const changes: string[] = [];
  const { clock, link } = rig({
    read: () => (silent ? 'timeout' : 'ok'),
    settings: { qosWindowMs: 60_000, backoffMaxMs: 1_000, maxConsecutiveErrors: 1_000 },
    onQosChange: (qos) => changes.push(qos.qosClass),
  });
  await link.start();
  await clock.advance(90_000);
  silent = true;
  await clock.advance(61_000);
  assert.equal(link.qos().successRate, 0);
  assert.deepEqual(changes, ['degraded', 'critical', 'down']);
  await link.stop();
});
