// Hardware in the loop for the meter: socat joins two pseudo-terminals back to back; the meter
// simulator answers on one end through serialport, and the real ModbusEnergyMeter / MeterLink read
// the other end, exactly as they would read /dev/ttyUSB0.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, watch } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { test, type TestContext } from 'node:test';
import { createLogger, type Logger } from '../agent/logging/logger.js';
import type { MeterReading } from '../drivers/types.js';
import { MeterLink, type MeterLinkSettings } from '../agent/meter/link.js';
import type { ModbusEnergyMeter } from '../drivers/meter/modbus-meter.js';
import { seededRandom } from '../drivers/meter/seeded-random.js';
import { createSerialMeter, type SerialMeterSettings } from '../drivers/meter/serial-meter.js';
import { SerialPortTransport } from '../drivers/meter/serial-transport.js';
import { runMeterSim } from '../drivers/meter/simulator-cli.js';
import { MeterSimulator, type ServedAnswer, type SimBehaviour } from '../drivers/meter/simulator.js';

const SOCAT_MISSING = spawnSync('socat', ['-V']).error !== undefined;
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const skip = SOCAT_MISSING && !IN_CI ? 'socat is not installed (apt-get install socat)' : false;

const LINK_SETTINGS: MeterLinkSettings = {
  pollIntervalMs: 1,
  backoffInitialMs: 20,
  backoffMaxMs: 200,
  breakerMaxReopensPerHour: 1000,
  breakerPauseMs: 1000,
  staleIdleMs: 600_000,
  meterStaleMs: 10_000,
  maxConsecutiveErrors: 15,
  reopenAfterMs: 1_800_000,
  qosWindowMs: 60_000,
};

interface PtyPair {
  /** The agent's end. */
  agentPath: string;
  /** The meter's end. */
  meterPath: string;
}

/** A fresh directory for the pty links, removed when the test ends whatever happens. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'meter-hil-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts socat with two linked ptys in dir and waits until both links exist; killed when the test ends. */
async function startSocat(t: TestContext, dir: string): Promise<PtyPair> {
  assert.ok(!SOCAT_MISSING, 'socat is required for the meter HIL tests (CI=true): apt-get install socat');
  const pair = { agentPath: join(dir, 'agent'), meterPath: join(dir, 'meter') };
  const watcher = watch(dir);
  const socat: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${pair.agentPath}`, `pty,raw,echo=0,link=${pair.meterPath}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(async () => {
    if (socat.exitCode === null && socat.signalCode === null) {
      socat.kill('SIGTERM');
      await once(socat, 'exit');
    }
  });
  let stderr = '';
  socat.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const bothExist = () => existsSync(pair.agentPath) && existsSync(pair.meterPath);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socat made no pty links within 10 s: ${stderr}`)), 10_000);
      const done = (error?: Error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      watcher.on('change', () => bothExist() && done());
      socat.once('error', done);
      socat.once('exit', (code) => done(new Error(`socat exited with ${code}: ${stderr}`)));
      if (bothExist()) done();
    });
  } finally {
    watcher.close();
  }
  return pair;
}

async function startSim(t: TestContext, path: string, baud: number, behaviour: Partial<SimBehaviour> = {}): Promise<MeterSimulator> {
  const sim = new MeterSimulator({
    transport: new SerialPortTransport({ path, baud, parity: 'none', stopBits: 1 }),
    random: seededRandom(20_240_601),
    behaviour,
  });
  await sim.start();
  t.after(() => sim.stop());
  return sim;
}

const meterSettings = (path: string, baud: number, timeoutMs: number): SerialMeterSettings => ({
  path,
  baud,
  parity: 'none',
  stopBits: 1,
  model: 'sdm630',
  unit: 1,
  timeoutMs,
  retries: 2,
});

/** The values a reading shows, in the simulator's terms. */
const valuesOf = (reading: MeterReading) => ({
  voltageV: reading.voltageV,
  currentA: reading.currentA,
  phasePowerW: reading.phasePowerW,
  powerW: reading.powerW,
  importKwh: reading.importKwh,
  exportKwh: reading.exportKwh,
  frequencyHz: reading.frequencyHz,
});

/**
 * A reading is true when the simulator sent an intact answer with exactly its values between the
 * reading before it and the moment it was taken (both inclusive: clocks tick in whole ms).
 */
function assertMatchesTruth(reading: MeterReading, served: readonly ServedAnswer[], sinceMs = 0): void {
  const candidates = served.filter((answer) => answer.intact && answer.atMs >= sinceMs && answer.atMs <= reading.takenAtMs);
  const seen = valuesOf(reading);
  const match = candidates.some(({ values: { totalKwh: _total, ...truth } }) => isDeepStrictEqual(seen, truth));
  assert.ok(match, `the reading taken at ${reading.takenAtMs} (${JSON.stringify(seen)}) matches no intact answer served since ${sinceMs}`);
}

const assertAllMatchTruth = (readings: readonly MeterReading[], served: readonly ServedAnswer[]) =>
  readings.forEach((reading, i) => assertMatchesTruth(reading, served, readings[i - 1]?.takenAtMs ?? 0));

/** A logger whose lines a test can wait for by event name. */
function eventLogger(): Logger & { events: Array<Record<string, unknown>>; next(event: string): Promise<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<{ event: string; resolve: (line: Record<string, unknown>) => void }> = [];
  const logger = createLogger({
    pretty: false,
    level: 'debug',
    write: (line) => {
      const parsed = JSON.parse(line.replace(/^<\d>/, '')) as Record<string, unknown>;
      events.push(parsed);
      for (const waiter of waiters.filter((w) => w.event === parsed.event)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(parsed);
      }
    },
  });
  const next = (event: string) => {
    const seen = events.find((line) => line.event === event);
    return seen ? Promise.resolve(seen) : new Promise<Record<string, unknown>>((resolve) => waiters.push({ event, resolve }));
  };
  return Object.assign(logger, { events, next });
}

test('at 9600 baud the serial meter reads exactly what the simulator holds', { skip, timeout: 20_000 }, async (t) => {
  const pair = await startSocat(t, tempDir(t));
  const sim = await startSim(t, pair.meterPath, 9600, { powerW: 7400 });
  const meter = createSerialMeter(meterSettings(pair.agentPath, 9600, 500));
  await meter.open();
  t.after(() => meter.close());
  const readings: MeterReading[] = [];
  for (let i = 0; i < 5; i += 1) readings.push(await meter.read());
  assertAllMatchTruth(readings, sim.truth().served);
  const last = await meter.read();
  const truth = sim.truth();
  assert.deepEqual(last.voltageV, truth.values.voltageV);
  assert.equal(last.powerW, 7400);
  assert.ok(Math.abs(last.importKwh - truth.values.importKwh) < 0.001);
  assert.equal(truth.stats.requests, 6, 'one request a reading');
  assert.deepEqual(meter.lineStats().errors, { crc: 0, timeout: 0, exception: 0, garbage: 0, partial: 0, io: 0, unexpected: 0 });
});

test('with 5 % broken CRCs and 2 % lost answers, 300 readings succeed at 99 % and every one is true', { skip, timeout: 60_000 }, async (t) => {
  const pair = await startSocat(t, tempDir(t));
  const sim = await startSim(t, pair.meterPath, 115_200, { corruptShare: 0.05, dropShare: 0.02, powerW: 11_000 });
  const meters: ModbusEnergyMeter[] = [];
  const readings: MeterReading[] = [];
  let enough: () => void = () => undefined;
  const reachedTarget = new Promise<void>((resolve) => (enough = resolve));
  const link = new MeterLink({
    createMeter: () => {
      const meter = createSerialMeter(meterSettings(pair.agentPath, 115_200, 500)); // an answer late on a loaded machine must not count as lost
      meters.push(meter);
      return meter;
    },
    settings: LINK_SETTINGS,
    log: eventLogger(),
    onReading: (reading) => {
      readings.push(reading);
      if (readings.length >= 300) enough();
    },
  });
  t.after(() => link.stop());
  await link.start();
  await reachedTarget;
  await link.stop();

  const qos = link.qos();
  const successRate = (qos.reads - qos.errors) / qos.reads;
  assert.ok(successRate >= 0.99, `success rate after retries ${successRate} (${qos.errors} of ${qos.reads} failed: ${JSON.stringify(qos.errorsByKind)})`);
  assertAllMatchTruth(readings, sim.truth().served);
  const stats = sim.truth().stats;
  assert.ok(stats.corrupted > 0 && stats.dropped > 0, `faults were injected: ${JSON.stringify(stats)}`);
  const lineErrors = meters.map((meter) => meter.lineStats().errors).reduce((sum, errors) => ({ crc: sum.crc + errors.crc, timeout: sum.timeout + errors.timeout }), { crc: 0, timeout: 0 });
  t.diagnostic(`readings ${readings.length}, link reads ${qos.reads}, failed ${qos.errors}, success ${successRate.toFixed(4)}; simulator ${JSON.stringify(stats)}; line ${JSON.stringify(lineErrors)}`);
  assert.equal(lineErrors.crc, stats.corrupted, 'every broken CRC was caught');
  assert.equal(lineErrors.timeout, stats.dropped, 'every lost answer timed out');
});

test('a link started before the port exists connects once socat creates it', { skip, timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const agentPath = join(dir, 'agent');
  const log = eventLogger();
  /** What the test waits for next; the link hands every reading to it. */
  let awaitReading: (reading: MeterReading) => void = () => undefined;
  const nextReading = (wanted: (reading: MeterReading) => boolean) =>
    new Promise<MeterReading>((resolve) => (awaitReading = (reading) => wanted(reading) && resolve(reading)));
  const gotReading = nextReading(() => true);
  const link = new MeterLink({
    createMeter: () => createSerialMeter(meterSettings(agentPath, 9600, 300)),
    settings: { ...LINK_SETTINGS, pollIntervalMs: 200 },
    log,
    logFields: { path: agentPath, unit: 1 },
    onReading: (reading) => awaitReading(reading),
  });
  t.after(() => link.stop());
  await link.start();
  const down = await log.next('meter_down');
  assert.equal(down.code, 'METER_PORT_MISSING');
  assert.equal(link.qos().connected, false);

  const pair = await startSocat(t, dir);
  const stopSim = new AbortController();
  let controlPort = 0;
  let sim: MeterSimulator | undefined;
  const simReady = new Promise<void>((resolve) => {
    const run = runMeterSim(['--path', pair.meterPath, '--baud', '9600', '--power-w', '7400', '--control-port', '0', '--seed', '1'], {
      signal: stopSim.signal,
      out: () => undefined,
      onReady: (info) => {
        controlPort = info.controlPort!;
        sim = info.sim;
        resolve();
      },
    });
    t.after(async () => {
      stopSim.abort();
      assert.equal(await run, 0);
    });
  });
  await simReady;

  const reading = await gotReading;
  assert.ok(sim);
  assertMatchesTruth(reading, sim.truth().served);
  await log.next('meter_up');
  assert.equal(log.events.filter((line) => line.event === 'meter_down').length, 1, 'the outage was logged once');

  // The control channel changes the running meter; the link sees the new power.
  const socket = connect(controlPort, '127.0.0.1');
  socket.setEncoding('utf8');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const sawNewPower = nextReading((r) => r.powerW === 11_000);
  socket.write('power 11000\n');
  assert.equal(String((await once(socket, 'data'))[0]).trim(), 'OK');
  const after = await sawNewPower;
  assertMatchesTruth(after, sim.truth().served, reading.takenAtMs);
  assert.ok(after.importKwh >= reading.importKwh);
});
