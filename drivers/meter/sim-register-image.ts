// The register image a simulated Eastron meter serves, after Eastron's register tables: every input
// register (function 04) the model lists, with plausible values derived from the simulated power and
// voltage, and the holding (setup) registers (function 03) a master reads to identify and configure
// the meter. Values are float32 in two registers, big-endian in bytes and words, except the serial
// number (an unsigned 32-bit integer). Where a register is not listed here, the meter does not have it.
import type { MeterModel } from './registers.js';

/** What the simulation knows; everything in the image is derived from it. */
export interface ImageSource {
  voltageV: number[];
  phasePowerW: number[];
  powerW: number;
  importKwh: number;
  exportKwh: number;
  /** Highest total power since the start, for the maximum-demand registers. */
  maxDemandW: number;
  powerFactor: number;
  frequencyHz: number;
}

/** How the meter is set up (holding registers). */
export interface MeterSetup {
  unit: number;
  baud: number;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  serialNumber: number;
}

/** The quantities the image is built from, per phase where they have phases. */
interface Electrical {
  v: number[];
  i: number[];
  p: number[];
  va: number[];
  vaR: number[];
  pf: number[];
  angle: number[];
  vLl: number[];
  vThd: number[];
  iThd: number[];
  src: ImageSource;
}

type Value = (e: Electrical) => number;
type Table = ReadonlyArray<readonly [address: number, value: Value]>;

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const mean = (values: number[]) => (values.length === 0 ? 0 : sum(values) / values.length);
const DEG_PER_RAD = 180 / Math.PI;
/** Plausible harmonic distortion of a grid supply and of an on-board charger's current, in %. */
const VOLTAGE_THD_PERCENT = [1.8, 1.9, 1.7];
const CURRENT_THD_PERCENT = [4.6, 4.4, 4.8];

function electrical(src: ImageSource): Electrical {
  const drawing = src.powerW > 0;
  const pf = src.phasePowerW.map(() => (drawing ? src.powerFactor : 1));
  const va = src.phasePowerW.map((w, n) => w / pf[n]!);
  const v = src.voltageV;
  const n = v.length;
  return {
    v,
    p: src.phasePowerW,
    va,
    vaR: va.map((s, k) => Math.sqrt(Math.max(0, s * s - src.phasePowerW[k]! ** 2))),
    i: va.map((s, k) => s / v[k]!),
    pf,
    angle: pf.map((f) => Math.acos(f) * DEG_PER_RAD),
    // line-to-line from two phase voltages 120° apart
    vLl: v.map((a, k) => {
      const b = v[(k + 1) % n]!;
      return Math.sqrt(a * a + b * b + a * b);
    }),
    vThd: VOLTAGE_THD_PERCENT.slice(0, n),
    iThd: CURRENT_THD_PERCENT.slice(0, n).map((thd) => (drawing ? thd : 0)),
    src,
  };
}

const phases = (first: number, pick: (e: Electrical) => number[], count = 3): Array<[number, Value]> =>
  Array.from({ length: count }, (_, k) => [first + 2 * k, (e: Electrical) => pick(e)[k] ?? 0] as [number, Value]);

const totalVa = (e: Electrical) => sum(e.va);
const totalVar = (e: Electrical) => sum(e.vaR);
const totalPf = (e: Electrical) => (totalVa(e) > 0 ? e.src.powerW / totalVa(e) : 1);
const totalKwh = (e: Electrical) => e.src.importKwh + e.src.exportKwh;
/** The reactive and apparent energy registers follow the import register at the simulated power factor. */
const importKvarh = (e: Electrical) => e.src.importKwh * Math.tan(Math.acos(e.src.powerFactor));
const kvah = (e: Electrical) => e.src.importKwh / e.src.powerFactor;
const ampHours = (e: Electrical) => (1000 * kvah(e)) / mean(e.v);

const ENERGY: Table = [
  [0x0046, (e) => e.src.frequencyHz],
  [0x0048, (e) => e.src.importKwh],
  [0x004a, (e) => e.src.exportKwh],
  [0x004c, importKvarh],
  [0x004e, () => 0],
];

/** Per-phase V, I, W, VA, VAr and PF: the first registers of the three-phase models. */
const PER_PHASE: Table = [
  ...phases(0x0000, (e) => e.v),
  ...phases(0x0006, (e) => e.i),
  ...phases(0x000c, (e) => e.p),
  ...phases(0x0012, (e) => e.va),
  ...phases(0x0018, (e) => e.vaR),
  ...phases(0x001e, (e) => e.pf),
];

/** System averages and totals of the three-phase models, 0x002A–0x003E. */
const TOTALS: Table = [
  [0x002a, (e) => mean(e.v)],
  [0x002e, (e) => mean(e.i)],
  [0x0030, (e) => sum(e.i)],
  [0x0034, (e) => e.src.powerW],
  [0x0038, totalVa],
  [0x003c, totalVar],
  [0x003e, totalPf],
];

/** SDM630-Modbus V2: the whole table, with phase angles and THD. */
const SDM630: Table = [
  ...PER_PHASE,
  ...phases(0x0024, (e) => e.angle),
  ...TOTALS,
  [0x0042, (e) => Math.acos(Math.min(1, totalPf(e))) * DEG_PER_RAD],
  ...ENERGY,
  [0x0050, kvah],
  [0x0052, ampHours],
  [0x0054, (e) => e.src.powerW],
  [0x0056, (e) => e.src.maxDemandW],
  [0x0064, totalVa],
  [0x0066, (e) => e.src.maxDemandW / e.src.powerFactor],
  [0x0068, () => 0],
  [0x006a, () => 0],
  ...phases(0x00c8, (e) => e.vLl),
  [0x00ce, (e) => mean(e.vLl)],
  [0x00e0, () => 0],
  ...phases(0x00ea, (e) => e.vThd),
  ...phases(0x00f0, (e) => e.iThd),
  [0x00f8, (e) => mean(e.vThd)],
  [0x00fa, (e) => mean(e.iThd)],
  ...phases(0x0102, (e) => e.i),
  ...phases(0x0108, (e) => e.i),
  ...phases(0x014e, (e) => e.vThd),
  [0x0154, (e) => mean(e.vThd)],
  [0x0156, totalKwh],
  [0x0158, importKvarh],
  ...phases(0x015a, (e) => e.v.map(() => e.src.importKwh / 3)),
  ...phases(0x0160, (e) => e.v.map(() => e.src.exportKwh / 3)),
  ...phases(0x0166, (e) => e.v.map(() => totalKwh(e) / 3)),
];

/** SDM72D-M-2: per-phase values, totals, frequency and energies; no phase angles, THD or demands. */
const SDM72V2: Table = [
  ...PER_PHASE,
  ...TOTALS,
  ...ENERGY,
  ...phases(0x00c8, (e) => e.vLl),
  [0x00ce, (e) => mean(e.vLl)],
  [0x00e0, () => 0],
  [0x0156, totalKwh],
  [0x0158, importKvarh],
];

/** SDM72D-M (protocol V1.1): total power and the energy registers only. */
const SDM72: Table = [
  [0x0034, (e) => e.src.powerW],
  [0x0048, (e) => e.src.importKwh],
  [0x004a, (e) => e.src.exportKwh],
  [0x0156, totalKwh],
];

/** SDM120-Modbus: one phase, whose active power (0x000C) is the total; no THD. */
const SDM120: Table = [
  [0x0000, (e) => e.v[0]!],
  [0x0006, (e) => e.i[0]!],
  [0x000c, (e) => e.p[0]!],
  [0x0012, (e) => e.va[0]!],
  [0x0018, (e) => e.vaR[0]!],
  [0x001e, (e) => e.pf[0]!],
  [0x0024, (e) => e.angle[0]!],
  ...ENERGY,
  [0x0054, (e) => e.src.powerW],
  [0x0056, (e) => e.src.maxDemandW],
  [0x0058, (e) => e.src.powerW],
  [0x005a, (e) => e.src.maxDemandW],
  [0x005c, () => 0],
  [0x005e, () => 0],
  [0x0102, (e) => e.i[0]!],
  [0x0108, (e) => e.i[0]!],
  [0x0156, totalKwh],
  [0x0158, importKvarh],
];

const INPUT_TABLES: Readonly<Record<MeterModel, Table>> = { sdm630: SDM630, sdm72: SDM72, sdm72v2: SDM72V2, sdm120: SDM120 };

/** Eastron's codes for the baud rate register (0x001C); the SDM120 adds 1200 baud as code 5. */
const BAUD_CODES: Readonly<Record<number, number>> = { 2400: 0, 4800: 1, 9600: 2, 19200: 3, 38400: 4, 1200: 5 };
/** Eastron's codes for the parity and stop bits register (0x0012). */
function parityCode(setup: MeterSetup): number {
  if (setup.stopBits === 2) return 3;
  return { none: 0, even: 1, odd: 2 }[setup.parity];
}

type SetupValue = (setup: MeterSetup) => number;
/** Float setup registers common to the models (Eastron's holding register table). */
const SETUP_FLOATS: ReadonlyArray<readonly [number, SetupValue, ReadonlyArray<MeterModel>?]> = [
  [0x0002, () => 60, ['sdm630', 'sdm72v2', 'sdm120']], // demand period, minutes
  [0x000a, () => 3, ['sdm630', 'sdm72', 'sdm72v2']], // system type: 3 phase 4 wire
  [0x000c, () => 100], // pulse 1 width, ms
  [0x0012, parityCode],
  [0x0014, (setup) => setup.unit], // Modbus node address
  [0x001c, (setup) => BAUD_CODES[setup.baud] ?? Number.NaN], // NaN: a rate no Eastron has
  [0x0056, () => 4, ['sdm630', 'sdm120']], // pulse 1 energy type: import active energy
];

/** The registers a function may read: contiguous ranges of the address space. Reads must stay inside one. */
export interface RegisterBlock {
  first: number;
  /** One past the last register. */
  end: number;
}

export const INPUT_BLOCKS: readonly RegisterBlock[] = [{ first: 0x0000, end: 0x0200 }];
export const HOLDING_BLOCKS: readonly RegisterBlock[] = [
  { first: 0x0000, end: 0x0060 },
  { first: 0xfc00, end: 0xfc02 },
];

/** Register address → 16-bit word, for the registers the model has. */
export type RegisterWords = Map<number, number>;

function putFloat(words: RegisterWords, address: number, value: number): void {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value, false);
  words.set(address, view.getUint16(0, false));
  words.set(address + 1, view.getUint16(2, false));
}

/** The input registers (function 04) of a model, and the float32 value of each listed register. */
export function inputImage(model: MeterModel, source: ImageSource): { words: RegisterWords; floats: Map<number, number> } {
  const e = electrical(source);
  const words: RegisterWords = new Map();
  const floats = new Map<number, number>();
  for (const [address, value] of INPUT_TABLES[model]) {
    const float = Math.fround(value(e));
    floats.set(address, float);
    putFloat(words, address, float);
  }
  return { words, floats };
}

/** The holding registers (function 03) of a model: its setup, and its serial number at 0xFC00. */
export function holdingImage(model: MeterModel, setup: MeterSetup): RegisterWords {
  const words: RegisterWords = new Map();
  for (const [address, value, models] of SETUP_FLOATS) {
    if (!models || models.includes(model)) putFloat(words, address, value(setup));
  }
  words.set(0xfc00, Math.floor(setup.serialNumber / 0x10000) & 0xffff);
  words.set(0xfc01, setup.serialNumber & 0xffff);
  return words;
}

/** The input register addresses a model lists (the first of each float's two registers). */
export function inputAddresses(model: MeterModel): number[] {
  return INPUT_TABLES[model].map(([address]) => address);
}
