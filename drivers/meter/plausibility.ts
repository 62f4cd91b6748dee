// A wrong value is never accepted: a reading is refused when a number is not finite, out of the
// meter's physical range, or when an energy register runs backwards (beyond float32 rounding) or
// forwards faster than the meter's largest power could have made it.
import type { MeterReading } from '../types.js';
import type { RegisterMap } from './registers.js';

const MAX_VOLTAGE_V = 1000;
/** Grids run at 50 or 60 Hz; a meter without voltage may show 0. Far beyond either is garbage. */
const MAX_FREQUENCY_HZ = 100;
/** Eastron energy registers roll over at 99,999,999.9 kWh, far beyond a charge point's life. */
const MAX_ENERGY_KWH = 1e8;
const MS_PER_HOUR = 3_600_000;

/** Two steps of float32 resolution at the size of value: what a stored counter may wobble by. */
export function float32Tolerance(value: number): number {
  const magnitude = Math.abs(value);
  if (magnitude < 1e-30) return 1e-9;
  return 2 * 2 ** (Math.floor(Math.log2(magnitude)) - 23);
}

function outOfRange(name: string, value: number, min: number, max: number): string | undefined {
  if (!Number.isFinite(value)) return `${name} is ${value}`;
  if (value < min || value > max) return `${name} ${value} is outside ${min}..${max}`;
  return undefined;
}

function staticProblem(reading: MeterReading, map: RegisterMap): string | undefined {
  const checks: Array<string | undefined> = [
    outOfRange('importKwh', reading.importKwh, 0, MAX_ENERGY_KWH),
    reading.exportKwh === undefined ? undefined : outOfRange('exportKwh', reading.exportKwh, 0, MAX_ENERGY_KWH),
    reading.frequencyHz === undefined ? undefined : outOfRange('frequencyHz', reading.frequencyHz, 0, MAX_FREQUENCY_HZ),
    outOfRange('powerW', reading.powerW, -map.maxPowerW, map.maxPowerW),
    ...reading.voltageV.map((v, i) => outOfRange(`voltageV[L${i + 1}]`, v, 0, MAX_VOLTAGE_V)),
    ...reading.currentA.map((a, i) => outOfRange(`currentA[L${i + 1}]`, a, -map.maxCurrentA, map.maxCurrentA)),
    ...reading.phasePowerW.map((w, i) => outOfRange(`phasePowerW[L${i + 1}]`, w, -map.maxPowerW, map.maxPowerW)),
  ];
  return checks.find((problem) => problem !== undefined);
}

function backwards(name: string, nowKwh: number, beforeKwh: number): string | undefined {
  const tolerance = float32Tolerance(Math.max(nowKwh, beforeKwh));
  return nowKwh < beforeKwh - tolerance ? `${name} went backwards from ${beforeKwh} to ${nowKwh}` : undefined;
}

function counterProblem(name: string, nowKwh: number, beforeKwh: number, elapsedMs: number, maxPowerW: number): string | undefined {
  const backwardsProblem = backwards(name, nowKwh, beforeKwh);
  if (backwardsProblem) return backwardsProblem;
  const tolerance = float32Tolerance(Math.max(nowKwh, beforeKwh));
  const possibleKwh = (maxPowerW / 1000) * (Math.max(0, elapsedMs) / MS_PER_HOUR);
  if (nowKwh - beforeKwh > possibleKwh + tolerance) {
    return `${name} jumped from ${beforeKwh} to ${nowKwh} in ${elapsedMs} ms, more than ${maxPowerW / 1000} kW could deliver`;
  }
  return undefined;
}

/** Why the reading cannot be true, or undefined when it is plausible (after `previous`, when given). */
export function implausibility(reading: MeterReading, map: RegisterMap, previous?: MeterReading): string | undefined {
  const problem = staticProblem(reading, map);
  if (problem || !previous) return problem;
  const elapsedMs = reading.takenAtMs - previous.takenAtMs;
  return (
    counterProblem('importKwh', reading.importKwh, previous.importKwh, elapsedMs, map.maxPowerW) ??
    (reading.exportKwh !== undefined && previous.exportKwh !== undefined
      ? counterProblem('exportKwh', reading.exportKwh, previous.exportKwh, elapsedMs, map.maxPowerW)
      : undefined)
  );
}

/** Why `reading` cannot follow `previous` on the same billing register, or undefined. */
export function energyWentBackwards(reading: MeterReading, previous: MeterReading): string | undefined {
  return backwards('importKwh', reading.importKwh, previous.importKwh);
}
