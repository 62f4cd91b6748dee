import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { MeterReading } from '../types.js';
import { float32Tolerance, implausibility } from './plausibility.js';
import { REGISTER_MAPS } from './registers.js';

const map = REGISTER_MAPS.sdm630;
const good: MeterReading = {
  importKwh: 1234.5,
  exportKwh: 0,
  powerW: 7400,
  voltageV: [230, 230, 230],
  currentA: [10.7, 10.7, 10.7],
  phasePowerW: [2466, 2466, 2468],
  takenAtMs: 1_000_000,
};
const later = (patch: Partial<MeterReading>, afterMs = 1000): MeterReading => ({ ...good, takenAtMs: good.takenAtMs + afterMs, ...patch });

test('a sane reading is plausible, alone and after the one before it', () => {
  assert.equal(implausibility(good, map), undefined);
  assert.equal(implausibility(later({ importKwh: 1234.502 }), map, good), undefined);
});

test('NaN and infinite values are refused', () => {
  assert.match(implausibility({ ...good, powerW: Number.NaN }, map)!, /powerW is NaN/);
  assert.match(implausibility({ ...good, voltageV: [230, Number.POSITIVE_INFINITY, 230] }, map)!, /voltageV\[L2\] is Infinity/);
});

test('negative energy and impossible power are refused', () => {
  assert.match(implausibility({ ...good, importKwh: -1 }, map)!, /importKwh -1 is outside/);
  assert.match(implausibility({ ...good, exportKwh: -0.5 }, map)!, /exportKwh/);
  assert.match(implausibility({ ...good, powerW: 3.4e38 }, map)!, /powerW/);
});

test('the import register may wobble by float32 rounding but never run backwards', () => {
  const step = float32Tolerance(1234.5);
  assert.ok(step > 0 && step < 0.001);
  assert.equal(implausibility(later({ importKwh: 1234.5 - step / 2 }), map, good), undefined);
  assert.match(implausibility(later({ importKwh: 1234.49 }), map, good)!, /importKwh went backwards from 1234.5 to 1234.49/);
});

test('the import register cannot jump further than the largest power allows', () => {
  // 200 kW for one second is 0.0556 kWh.
  assert.equal(implausibility(later({ importKwh: 1234.55 }), map, good), undefined);
  assert.match(implausibility(later({ importKwh: 1235.5 }), map, good)!, /jumped from 1234.5 to 1235.5 in 1000 ms/);
  assert.equal(implausibility(later({ importKwh: 1235.5 }, 3_600_000), map, good), undefined);
});
