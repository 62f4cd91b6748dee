import { strict as assert } from 'node:assert';
import { afterEach, test } from 'node:test';
import { DriverError } from '../types.js';
import { ManualClock } from './testing/manual-clock.js';
import { createTransportPair } from './testing/memory-transport.js';
import { ModbusEnergyMeter } from './modbus-meter.js';
import { ModbusRtuClient } from './modbus-rtu.js';
import { decodeFloat32, type MeterModel } from './registers.js';
import { READ_HOLDING_REGISTERS } from './rtu-frame.js';
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
  assert.equal(reading.currentA[0], Math.fround(3_680 / 0.99 / 230), 'the current of 3680 W at power factor 0.99');
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
  assert.equal((await rejection(client.readInputRegisters(1, 0, 82))).fields.exceptionCode, 3, 'more than 80 registers');
  assert.equal((await rejection(client.readInputRegisters(1, 0x01f0, 40))).fields.exceptionCode, 2, 'past the input registers');
  const holding = (address: number, count: number) => client.read({ unit: 1, functionCode: READ_HOLDING_REGISTERS, address, count });
  assert.equal((await rejection(holding(0x0100, 2))).fields.exceptionCode, 2, 'no setup register there');
  assert.equal((await rejection(holding(0xfc00, 4))).fields.exceptionCode, 2, 'past the serial number');
});

/** The float32 in the two input (or holding) registers at address, read with one request for just them. */
async function floatAt(client: ModbusRtuClient, address: number, functionCode = 0x04): Promise<number> {
  return decodeFloat32(await client.read({ unit: 1, functionCode, address, count: 2 }), 0);
}

test('serves the whole SDM630 input image with plausible values: frequency, power factor, VA, VAr, angles, averages, THD', async () => {
  const { client, sim } = await rig({ retries: 0 });
  const near = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 0.01, `${what}: ${actual}, expected about ${expected}`);
  near(await floatAt(client, 0x0046), 50, 'frequency Hz');
  near(await floatAt(client, 0x001e), 0.99, 'power factor L1');
  near(await floatAt(client, 0x003e), 0.99, 'total power factor');
  near(await floatAt(client, 0x0012), 7400 / 3 / 0.99, 'VA L1');
  near(await floatAt(client, 0x0038), 7400 / 0.99, 'total VA');
  near(await floatAt(client, 0x003c), Math.sqrt((7400 / 0.99) ** 2 - 7400 ** 2), 'total VAr');
  near(await floatAt(client, 0x0024), (Math.acos(0.99) * 180) / Math.PI, 'phase angle L1, degrees');
  near(await floatAt(client, 0x002a), (230 + 230.6 + 229.1) / 3, 'average voltage');
  near(await floatAt(client, 0x0030), [230, 230.6, 229.1].reduce((sum, volts) => sum + 7400 / 3 / 0.99 / volts, 0), 'sum of line currents');
  near(await floatAt(client, 0x00c8), Math.sqrt(230 ** 2 + 230.6 ** 2 + 230 * 230.6), 'L1-L2 voltage');
  near(await floatAt(client, 0x00ea), 1.8, 'voltage THD L1, %');
  near(await floatAt(client, 0x00f0), 4.6, 'current THD L1, %');
  near(await floatAt(client, 0x0156), sim.truth().values.totalKwh, 'total kWh');
  assert.equal(Object.keys(sim.truth().registers).length, 76, 'every register of the SDM630 table, in truth()');
});

test('any read length inside the input registers is answered: one register, three, across undefined ones as 0', async () => {
  const { client } = await rig({ retries: 0 });
  const frequency = await client.readInputRegisters(1, 0x0046, 2);
  assert.deepEqual(await client.readInputRegisters(1, 0x0046, 1), frequency.slice(0, 2), 'the high word of 50.0');
  assert.deepEqual(await client.readInputRegisters(1, 0x0047, 1), frequency.slice(2, 4), 'its low word alone');
  assert.equal((await client.readInputRegisters(1, 0x0045, 3)).length, 6);
  assert.deepEqual(await client.readInputRegisters(1, 0x0044, 2), new Uint8Array(4), '0x0044 is not in the table: 0');
});

test('with refuseGaps, a read that touches a register the model lacks is exception 2', async () => {
  const { client } = await rig({ retries: 0, sim: { refuseGaps: true } });
  assert.equal((await rejection(client.readInputRegisters(1, 0x0044, 2))).fields.exceptionCode, 2);
  assert.equal((await client.readInputRegisters(1, 0x0046, 4)).length, 8, 'frequency and import kWh are adjacent');
});

test('function 03 answers the setup registers: node address, parity, baud code, demand period and the serial number', async () => {
  const { client } = await rig({ retries: 0, sim: { setup: { baud: 19_200, parity: 'even', serialNumber: 21_070_042 } } });
  assert.equal(await floatAt(client, 0x0014, READ_HOLDING_REGISTERS), 1, 'Modbus node address');
  assert.equal(await floatAt(client, 0x001c, READ_HOLDING_REGISTERS), 3, 'baud code 3 = 19200');
  assert.equal(await floatAt(client, 0x0012, READ_HOLDING_REGISTERS), 1, 'parity code 1 = even, one stop bit');
  assert.equal(await floatAt(client, 0x0002, READ_HOLDING_REGISTERS), 60, 'demand period, minutes');
  assert.equal(await floatAt(client, 0x000a, READ_HOLDING_REGISTERS), 3, 'system type 3 = three phase, four wire');
  const serial = await client.read({ unit: 1, functionCode: READ_HOLDING_REGISTERS, address: 0xfc00, count: 2 });
  assert.equal(new DataView(serial.buffer, serial.byteOffset).getUint32(0, false), 21_070_042);
});

test('each model serves its own table: an SDM120 has frequency but no THD, an SDM72D-M (V1) no frequency', async () => {
  const sdm120 = await rig({ model: 'sdm120', retries: 0, sim: { refuseGaps: true } });
  assert.equal(await floatAt(sdm120.client, 0x0046), 50);
  assert.equal((await rejection(sdm120.client.readInputRegisters(1, 0x00ea, 2))).fields.exceptionCode, 2, 'no THD on an SDM120');
  assert.equal((await rejection(sdm120.client.readInputRegisters(1, 0x0034, 2))).fields.exceptionCode, 2, 'no total power register on an SDM120');
  const sdm72 = await rig({ model: 'sdm72', retries: 0, sim: { refuseGaps: true } });
  assert.equal((await rejection(sdm72.client.readInputRegisters(1, 0x0046, 2))).fields.exceptionCode, 2);
  assert.equal(await floatAt(sdm72.client, 0x0034), 7400);
});
