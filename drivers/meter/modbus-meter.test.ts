import { strict as assert } from 'node:assert';
import { afterEach, test } from 'node:test';
import { DriverError } from '../types.js';
import { createTransportPair } from './testing/memory-transport.js';
import { ModbusEnergyMeter } from './modbus-meter.js';
import { ModbusRtuClient } from './modbus-rtu.js';
import type { MeterModel } from './registers.js';
import { buildReadResponse } from './rtu-frame.js';
import { MeterSimulator } from './simulator.js';

const running: MeterSimulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.stop()));
});

async function meterOn(model: MeterModel, options: { refuseGaps?: boolean; initialImportKwh?: number } = {}) {
  const [clientSide, meterSide] = createTransportPair();
  const sim = new MeterSimulator({ transport: meterSide, model, ...options });
  running.push(sim);
  await sim.start();
  const client = new ModbusRtuClient({ transport: clientSide, baud: 115_200, timeoutMs: 2000, retries: 0 }); // generous: no test here waits for a timeout
  const meter = new ModbusEnergyMeter({ client, unit: 1, model });
  await meter.open();
  return { sim, meter, client };
}

test('a full reading takes one request and carries when it was taken', async () => {
  const { meter, sim } = await meterOn('sdm630');
  const before = Date.now();
  const reading = await meter.read();
  assert.equal(sim.truth().stats.requests, 1);
  assert.deepEqual(meter.plannedReads, [{ address: 0, count: 76 }]);
  assert.ok(reading.takenAtMs >= before && reading.takenAtMs <= Date.now());
});

test('a meter that refuses reads across unused registers is read register group by group', async () => {
  const { meter, sim } = await meterOn('sdm72', { refuseGaps: true });
  const reading = await meter.read();
  assert.equal(reading.powerW, 7400);
  // the register as served by the read that carried it (the meter's own keeps counting at 7.4 kW)
  const lastServed = sim.truth().served.filter((answer) => answer.intact).at(-1)!;
  assert.equal(reading.importKwh, lastServed.values.importKwh);
  assert.deepEqual(meter.plannedReads, [
    { address: 0x34, count: 2 },
    { address: 0x48, count: 4 },
  ]);
  await meter.read();
  assert.equal(sim.truth().stats.exceptions, 1, 'the refused wide read is not asked again');
});

test('an SDM72D-M-2 is read like an SDM630, with three phases', async () => {
  const { meter } = await meterOn('sdm72v2');
  const reading = await meter.read();
  assert.equal(reading.voltageV.length, 3);
  assert.equal(reading.powerW, 7400);
});

test('an import register that ran backwards is refused, never passed on', async () => {
  const { meter, sim } = await meterOn('sdm630');
  await meter.read();
  sim.setImportKwh(1000);
  const error = await meter.read().then(
    () => assert.fail('a backwards register was accepted'),
    (rejected: unknown) => rejected as DriverError,
  );
  assert.equal(error.code, 'METER_IMPLAUSIBLE');
  assert.equal(error.fields.kind, 'implausible');
  // the register kept counting at 7.4 kW until the first read: 1234.5, or a float32 step above it
  assert.match(error.message, /importKwh went backwards from 1234\.5\d* to 1000/);
});

test('a NaN in a register with a good CRC is refused', async () => {
  const { meter, sim } = await meterOn('sdm630');
  sim.addBehaviour((request, answer) => {
    const frame = answer.chunks[0];
    if (!frame) return answer;
    const registers = frame.slice(3, -2);
    registers.set([0x7f, 0xc0, 0x00, 0x00], 0); // L1 voltage
    return { ...answer, chunks: [buildReadResponse(request.unit, request.functionCode, registers)] };
  });
  await assert.rejects(meter.read(), (error: unknown) => error instanceof DriverError && /voltageV\[L1\] is NaN/.test(error.message));
});
