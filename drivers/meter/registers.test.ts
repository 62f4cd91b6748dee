import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { decodeFloat32, encodeFloat32, planReads, readingRegisters, REGISTER_MAPS, toReading, valuesByAddress, wireBytes } from './registers.js';

const hex = (text: string) => Uint8Array.from(text.split(' ').map((b) => parseInt(b, 16)));
const addressesOf = (model: keyof typeof REGISTER_MAPS) => readingRegisters(REGISTER_MAPS[model]).map((r) => r.address);

test('float32 registers decode big-endian: 230 V, 7400 W, 1234.5 kWh, -1.5', () => {
  assert.equal(decodeFloat32(hex('43 66 00 00'), 0), 230);
  assert.equal(decodeFloat32(hex('45 e7 40 00'), 0), 7400);
  assert.equal(decodeFloat32(hex('00 00 44 9a 50 00'), 2), 1234.5);
  assert.equal(decodeFloat32(hex('bf c0 00 00'), 0), -1.5);
  assert.deepEqual(encodeFloat32(1234.5), hex('44 9a 50 00'));
  assert.ok(Number.isNaN(decodeFloat32(hex('7f c0 00 00'), 0)));
});

test('a full SDM630 reading is one read of 76 registers from 0x0000: 165 bytes on the wire', () => {
  const plan = planReads(addressesOf('sdm630'), 80);
  assert.deepEqual(plan, [{ address: 0x0000, count: 76 }]);
  assert.equal(wireBytes(plan), 8 + 5 + 152);
});

test('an SDM120 reading is the same single read, an SDM72D-M one a read of 24 registers from 0x0034', () => {
  assert.deepEqual(planReads(addressesOf('sdm120'), 80), [{ address: 0x0000, count: 76 }]);
  assert.deepEqual(planReads(addressesOf('sdm72'), 80), [{ address: 0x0034, count: 24 }]);
});

test('without spanning unused registers, SDM630 takes three reads and SDM72D-M two', () => {
  const sdm630 = planReads(addressesOf('sdm630'), 80, 0);
  assert.deepEqual(sdm630, [
    { address: 0x0000, count: 18 },
    { address: 0x0034, count: 2 },
    { address: 0x0046, count: 6 },
  ]);
  assert.equal(wireBytes(sdm630), 3 * 13 + 2 * (18 + 2 + 6));
  assert.deepEqual(planReads(addressesOf('sdm72'), 80, 0), [
    { address: 0x0034, count: 2 },
    { address: 0x0048, count: 4 },
  ]);
});

test('no read asks for more than the limit, and the fewest reads cover every register', () => {
  assert.deepEqual(planReads([0x0000, 0x004e, 0x0050], 80), [
    { address: 0x0000, count: 80 },
    { address: 0x0050, count: 2 },
  ]);
  assert.deepEqual(planReads([0x0000, 0x0156, 0x0048], 80), [
    { address: 0x0000, count: 0x4a },
    { address: 0x0156, count: 2 },
  ]);
  for (const block of planReads(Array.from({ length: 200 }, (_, i) => 2 * i), 80)) assert.ok(block.count <= 80);
});

test('the frequency (0x0046) is read inside the existing block where the model has it, and not for the SDM72D-M', () => {
  for (const model of ['sdm630', 'sdm72v2', 'sdm120'] as const) {
    assert.ok(addressesOf(model).includes(0x0046), model);
    assert.equal(planReads(addressesOf(model), 80).length, 1, `${model}: still one read`);
  }
  assert.ok(!addressesOf('sdm72').includes(0x0046));
});

test('the total-energy register 0x0156 is served but not read for a reading', () => {
  assert.ok(REGISTER_MAPS.sdm630.registers.some((r) => r.address === 0x0156));
  assert.ok(!addressesOf('sdm630').includes(0x0156));
});

test('answers decode into a reading with each value in its place', () => {
  const map = REGISTER_MAPS.sdm630;
  const plan = planReads(addressesOf('sdm630'), 80);
  const answer = new Uint8Array(2 * 76);
  const put = (address: number, value: number) => answer.set(encodeFloat32(value), 2 * address);
  [230, 230.5, 229].forEach((v, i) => put(2 * i, v));
  [10, 11, 12].forEach((a, i) => put(6 + 2 * i, a));
  [2300, 2500, 2600].forEach((w, i) => put(0x0c + 2 * i, w));
  put(0x34, 7400);
  put(0x46, 50);
  put(0x48, 1234.5);
  put(0x4a, 2.25);
  const reading = toReading(map, valuesByAddress(plan, [answer], readingRegisters(map)), 42);
  assert.deepEqual(reading, {
    importKwh: 1234.5,
    exportKwh: 2.25,
    powerW: 7400,
    frequencyHz: 50,
    voltageV: [230, 230.5, 229],
    currentA: [10, 11, 12],
    phasePowerW: [2300, 2500, 2600],
    takenAtMs: 42,
  });
});

test('an SDM72D-M reading has no per-phase values', () => {
  const map = REGISTER_MAPS.sdm72;
  const plan = planReads(addressesOf('sdm72'), 80);
  const answer = new Uint8Array(2 * 24);
  answer.set(encodeFloat32(11_000), 0);
  answer.set(encodeFloat32(99.5), 2 * (0x48 - 0x34));
  const reading = toReading(map, valuesByAddress(plan, [answer], readingRegisters(map)), 1);
  assert.deepEqual([reading.powerW, reading.importKwh, reading.voltageV, reading.currentA], [11_000, 99.5, [], []]);
});
