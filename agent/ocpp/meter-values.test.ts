import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MeterReading } from '../../drivers/types.js';
import { clockSlot, energyWh, meterValue, parseMeasurands, periodicDue, registerValue, registerWh } from './meter-values.js';

const reading: MeterReading = {
  importKwh: 1234.5678,
  powerW: 7401.26,
  voltageV: [230.04, 231.5, 229.96],
  currentA: [10.724, 10.7, 10.69],
  phasePowerW: [2467, 2467, 2467],
  takenAtMs: Date.parse('2026-12-01T12:00:00.250Z'),
};

describe('OCPP meter values', () => {
  it('carries the import register in whole Wh, power, and voltage and current per phase', () => {
    const value = meterValue(reading, 'Sample.Periodic');
    assert.equal(value.timestamp, '2026-12-01T12:00:00.250Z');
    const by = (measurand: string) => value.sampledValue.filter((s) => s.measurand === measurand);
    assert.deepEqual(by('Energy.Active.Import.Register'), [{ value: '1234568', context: 'Sample.Periodic', measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Outlet' }]);
    assert.equal(by('Power.Active.Import')[0]!.value, '7401.3');
    assert.deepEqual(by('Voltage').map((s) => [s.phase, s.value, s.unit]), [['L1-N', '230', 'V'], ['L2-N', '231.5', 'V'], ['L3-N', '230', 'V']]);
    assert.deepEqual(by('Current.Import').map((s) => [s.phase, s.value, s.unit]), [['L1', '10.72', 'A'], ['L2', '10.7', 'A'], ['L3', '10.69', 'A']]);
    assert.equal(energyWh(value), 1234568);
  });

  it('samples only the measurands asked for, and a single-phase meter gives one phase', () => {
    const value = meterValue({ ...reading, voltageV: [230], currentA: [32] }, 'Sample.Clock', ['Energy.Active.Import.Register', 'Voltage']);
    assert.deepEqual(value.sampledValue.map((s) => s.measurand), ['Energy.Active.Import.Register', 'Voltage']);
    assert.ok(value.sampledValue.every((s) => s.context === 'Sample.Clock'));
  });

  it('rounds the register to Wh the same way for meterStart/meterStop and the samples', () => {
    assert.equal(registerWh(1234.5005), 1234501);
    assert.equal(registerWh(0.0004), 0);
    assert.deepEqual(registerValue(1234501, '2026-12-01T12:00:00Z', 'Transaction.End').sampledValue[0]!.value, '1234501');
  });

  it('accepts a measurand list only when it knows every name in it', () => {
    assert.deepEqual(parseMeasurands('Energy.Active.Import.Register, Power.Active.Import'), ['Energy.Active.Import.Register', 'Power.Active.Import']);
    assert.equal(parseMeasurands('Energy.Active.Import.Register,SoC'), undefined);
  });

  it('is due periodically once the interval passed (a reading half a poll early counts) and never at interval 0', () => {
    assert.equal(periodicDue(undefined, 1000, 60), true);
    assert.equal(periodicDue(0, 59_600, 60), true);
    assert.equal(periodicDue(0, 59_000, 60), false);
    assert.equal(periodicDue(0, 10_000_000, 0), false);
  });

  it('puts clock-aligned samples in slots counted from midnight UTC', () => {
    const at = (iso: string) => clockSlot(Date.parse(iso), 900);
    assert.equal(at('2026-12-01T12:14:59.999Z'), at('2026-12-01T12:00:00.000Z'));
    assert.notEqual(at('2026-12-01T12:15:00.000Z'), at('2026-12-01T12:14:59.999Z'));
    assert.equal(clockSlot(Date.now(), 0), undefined);
  });
});
