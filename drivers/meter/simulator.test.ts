import { strict as assert } from 'node:assert';
import { afterEach, test } from 'node:test';
import { DriverError } from '../types.js';
import { ManualClock } from './testing/manual-clock.js';
import { createTransportPair } from './testing/memory-transport.js';
import { ModbusEnergyMeter } from './modbus-meter.js';
import { ModbusRtuClient } from './modbus-rtu.js';
import type { MeterModel } from './registers.js';
import { seededRandom } from './seeded-random.js';
import { MeterSimulator, type MeterSimulatorOptions, type SimBehaviour } from './simulator.js';

const running: MeterSimulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.stop()));
});

/** Long enough that a loaded machine never times out an answer that was sent; tests of silence pass a short one. */
const ANSWER_TIMEOUT_MS = 2000;
const SILENCE_TIMEOUT_MS = 30;
/** For tests that see both a silence and good answers: short enough to keep them quick, long enough for a loaded machine. */
const MIXED_TIMEOUT_MS = 250;

async function rig(options: { model?: MeterModel; behaviour?: Partial<SimBehaviour>; sim?: Partial<MeterSimulatorOptions>; retries?: number; timeoutMs?: number } = {}) {
  const [clientSide, meterSide] = createTransportPair();
  const simClock = new ManualClock(1_700_000_000_000);
  const sim = new MeterSimulator({
    transport: meterSide,
    model: options.model ?? 'sdm630',
    clock: simClock,
    random: seededRandom(7),
    behaviour: options.behaviour,
    ...options.sim,
  });
  running.push(sim);
  await sim.start();
  const client = new ModbusRtuClient({ transport: clientSide, baud: 115_200, timeoutMs: options.timeoutMs ?? ANSWER_TIMEOUT_MS, retries: options.retries ?? 2 });
  const meter = new ModbusEnergyMeter({ client, unit: 1, model: options.model ?? 'sdm630', now: () => simClock.now() });
  await meter.open();
  return { sim, simClock, client, meter, clientSide, meterSide };
}

const rejection = async (promise: Promise<unknown>): Promise<DriverError> => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DriverError, `not a DriverError: ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
};

test('a default simulator is a correct SDM630 whose reading equals its truth', async () => {
  const { sim, meter } = await rig();
  const reading = await meter.read();
  const truth = sim.truth().values;
  assert.deepEqual(reading.voltageV, truth.voltageV);
  assert.deepEqual(reading.currentA, truth.currentA);
  assert.deepEqual(reading.phasePowerW, truth.phasePowerW);
  assert.equal(reading.powerW, 7400);
  assert.equal(reading.importKwh, truth.importKwh);
  assert.equal(reading.exportKwh, truth.exportKwh);
  assert.equal(sim.truth().registers['0x0048'], truth.importKwh);
  assert.equal(sim.truth().served.at(-1)?.intact, true);
});

test('the import register integrates the power over the injected clock', async () => {
  const { sim, simClock, meter } = await rig({ behaviour: { powerW: 11_000 } });
  const before = await meter.read();
  await simClock.advance(30 * 60_000);
  sim.setBehaviour({ powerW: 3_700 });
  await simClock.advance(60 * 60_000);
  const after = await meter.read();
  assert.equal(after.powerW, 3_700);
  assert.ok(Math.abs(after.importKwh - before.importKwh - (5.5 + 3.7)) < 0.001, `imported ${after.importKwh - before.importKwh} kWh`);
});

test('an SDM120 answers one phase and its active power is the total', async () => {
  const { meter } = await rig({ model: 'sdm120', behaviour: { powerW: 3_680 } });
  const reading = await meter.read();
  assert.equal(reading.voltageV.length, 1);
  assert.equal(reading.phasePowerW.length, 1);
  assert.equal(reading.powerW, 3_680);
  assert.equal(reading.phasePowerW[0], 3_680);
  assert.equal(reading.currentA[0], Math.fround(3_680 / 230));
});

test('corrupting every CRC fails the read with METER_CRC after every retry', async () => {
  const { meter, client, sim } = await rig({ behaviour: { corruptShare: 1 } });
  const error = await rejection(meter.read());
  assert.equal(error.code, 'METER_CRC');
  assert.match(error.message, /after 3 attempts/);
  assert.equal(client.stats().errors.crc, 3);
  assert.equal(sim.truth().stats.corrupted, 3);
  assert.ok(sim.truth().served.every((answer) => !answer.intact));
});

test('dropping every answer fails the read with METER_TIMEOUT', async () => {
  const { meter, client } = await rig({ behaviour: { dropShare: 1 }, retries: 1, timeoutMs: SILENCE_TIMEOUT_MS });
  const error = await rejection(meter.read());
  assert.equal(error.code, 'METER_TIMEOUT');
  assert.equal(error.message, 'METER_TIMEOUT: no answer from unit 1 on memory:a within 30 ms (after 2 attempts)');
  assert.equal(client.stats().errors.timeout, 2);
});

test('a silent meter answers nothing until it is told to speak again', async () => {
  const { meter, sim } = await rig({ retries: 0, timeoutMs: MIXED_TIMEOUT_MS });
  sim.setBehaviour({ silent: true });
  assert.equal((await rejection(meter.read())).code, 'METER_TIMEOUT');
  sim.setBehaviour({ silent: false });
  assert.equal((await meter.read()).powerW, 7400);
});

test('a device-failure exception (4) is retried, an illegal data value (3) is not', async () => {
  const { meter, client, sim } = await rig({ behaviour: { exceptionCode: 4 } });
  const busy = await rejection(meter.read());
  assert.equal(busy.code, 'METER_EXCEPTION');
  assert.equal(busy.fields.exceptionCode, 4);
  assert.match(busy.message, /exception 4 \(server device failure\)/);
  assert.equal(client.stats().errors.exception, 3);
  sim.setBehaviour({ exceptionCode: 3 });
  await rejection(meter.read());
  assert.equal(client.stats().errors.exception, 4);
});

test('noise before answers and answers cut in two still read correctly', async () => {
  const { meter, client, sim } = await rig({ behaviour: { noiseShare: 1, splitShare: 1 } });
  for (let i = 0; i < 20; i += 1) {
    const reading = await meter.read();
    assert.equal(reading.importKwh, sim.truth().values.importKwh);
  }
  assert.equal(client.stats().answers, 20);
  assert.equal(client.stats().resyncs, 20);
  assert.ok(client.stats().noiseBytes >= 20);
});

test('the same seed gives the same faults', async () => {
  const tagsOf = async () => {
    const { meter, sim } = await rig({ behaviour: { corruptShare: 0.3, dropShare: 0.2 }, retries: 0, timeoutMs: SILENCE_TIMEOUT_MS });
    for (let i = 0; i < 15; i += 1) await meter.read().catch(() => undefined);
    await sim.stop();
    return sim.truth().served.map((answer) => answer.tags.join('+'));
  };
  const first = await tagsOf();
  assert.deepEqual(await tagsOf(), first);
  assert.ok(first.some((tags) => tags !== ''), 'some faults happened');
});

test('a stacked behaviour applies after the built-in ones and can be removed', async () => {
  const { meter, sim } = await rig({ retries: 0, timeoutMs: MIXED_TIMEOUT_MS });
  let answered = 0;
  const remove = sim.addBehaviour((_request, answer) => (++answered > 2 ? { ...answer, chunks: [], tags: [...answer.tags, 'silent'] } : answer));
  await meter.read();
  await meter.read();
  assert.equal((await rejection(meter.read())).code, 'METER_TIMEOUT');
  remove();
  await meter.read();
});

test('a request for another unit is ignored, as on a shared bus', async () => {
  const { client, sim } = await rig({ retries: 0, timeoutMs: MIXED_TIMEOUT_MS });
  assert.equal((await rejection(client.readInputRegisters(9, 0, 2))).code, 'METER_TIMEOUT');
  assert.equal(sim.truth().stats.ignored, 1);
});

test('reads the meter cannot serve get the exceptions an Eastron answers', async () => {
  const { client } = await rig({ retries: 0 });
  assert.equal((await rejection(client.readInputRegisters(1, 0, 82))).fields.exceptionCode, 3);
  assert.equal((await rejection(client.readInputRegisters(1, 0, 3))).fields.exceptionCode, 3);
  assert.equal((await rejection(client.readInputRegisters(1, 0x01f0, 40))).fields.exceptionCode, 2);
});
