// OCPP 1.6 MeterValue objects from a meter reading, and when the next ones are due. Pure.
import type { MeterReading } from '../../drivers/types.js';

export type ReadingContext = 'Sample.Periodic' | 'Sample.Clock' | 'Transaction.Begin' | 'Transaction.End' | 'Trigger';

export const MEASURANDS = ['Energy.Active.Import.Register', 'Power.Active.Import', 'Voltage', 'Current.Import'] as const;
export type Measurand = (typeof MEASURANDS)[number];

export interface SampledValue {
  value: string;
  context: ReadingContext;
  measurand: Measurand;
  unit: 'Wh' | 'W' | 'V' | 'A';
  phase?: 'L1' | 'L2' | 'L3' | 'L1-N' | 'L2-N' | 'L3-N';
  location: 'Outlet';
}

export interface MeterValue {
  timestamp: string;
  sampledValue: SampledValue[];
}

const PHASES = ['L1', 'L2', 'L3'] as const;
const PHASE_VOLTAGE = ['L1-N', 'L2-N', 'L3-N'] as const;

/** The import register in whole Wh, as meterStart/meterStop carry it. */
export function registerWh(importKwh: number): number {
  return Math.round(importKwh * 1000);
}

export function meterValue(reading: MeterReading, context: ReadingContext, measurands: readonly Measurand[] = MEASURANDS): MeterValue {
  const sampled: SampledValue[] = [];
  const add = (measurand: Measurand, unit: SampledValue['unit'], value: number, phase?: SampledValue['phase']) =>
    sampled.push({ value: String(value), context, measurand, unit, ...(phase ? { phase } : {}), location: 'Outlet' });
  for (const measurand of measurands) {
    switch (measurand) {
      case 'Energy.Active.Import.Register':
        add(measurand, 'Wh', registerWh(reading.importKwh));
        break;
      case 'Power.Active.Import':
        add(measurand, 'W', round1(reading.powerW));
        break;
      case 'Voltage':
        reading.voltageV.slice(0, 3).forEach((v, i) => add(measurand, 'V', round1(v), PHASE_VOLTAGE[i]));
        break;
      case 'Current.Import':
        reading.currentA.slice(0, 3).forEach((a, i) => add(measurand, 'A', Math.round(a * 100) / 100, PHASES[i]));
        break;
    }
  }
  return { timestamp: new Date(reading.takenAtMs).toISOString(), sampledValue: sampled };
}

/** The register in Wh carried by a MeterValue, if any. */
export function energyWh(value: MeterValue): number | undefined {
  const sample = value.sampledValue.find((s) => s.measurand === 'Energy.Active.Import.Register');
  return sample === undefined ? undefined : Number(sample.value);
}

/** A comma list of measurands (MeterValuesSampledData): the known ones, or undefined when any is unknown. */
export function parseMeasurands(list: string): Measurand[] | undefined {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.every((name): name is Measurand => (MEASURANDS as readonly string[]).includes(name))) return undefined;
  return names;
}

/** Readings arrive about once a second: a sample this early still counts as on time. */
const POLL_JITTER_MS = 500;

/** Periodic sampling: due once intervalS has passed since the last sample (0 = off). */
export function periodicDue(lastSampleMs: number | undefined, nowMs: number, intervalS: number): boolean {
  if (intervalS <= 0) return false;
  return lastSampleMs === undefined || nowMs - lastSampleMs >= intervalS * 1000 - POLL_JITTER_MS;
}

/** Clock-aligned sampling: due when a reading falls into a new interval counted from midnight UTC (0 = off). */
export function clockSlot(nowMs: number, intervalS: number): number | undefined {
  if (intervalS <= 0) return undefined;
  return Math.floor(nowMs / (intervalS * 1000));
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** A MeterValue with the register alone, for StopTransaction's transactionData. */
export function registerValue(energyWh: number, timestamp: string, context: ReadingContext): MeterValue {
  return {
    timestamp,
    sampledValue: [{ value: String(energyWh), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Outlet' }],
  };
}
