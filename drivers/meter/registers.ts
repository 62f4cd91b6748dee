// The register maps of the supported Eastron meters, as data, and the planning of the reads that
// fetch a full reading in as few requests as the meter allows. Every value is a float32 in two
// input registers (function 0x04), big-endian in bytes and in words.
import type { MeterReading } from '../types.js';

export type MeterModel = 'sdm630' | 'sdm72' | 'sdm72v2' | 'sdm120';

/** The MeterReading fields a register can feed; totalKwh is served but not part of a reading. */
export type Quantity = 'voltageV' | 'currentA' | 'phasePowerW' | 'powerW' | 'frequencyHz' | 'importKwh' | 'exportKwh' | 'totalKwh';

export interface RegisterDef {
  /** First of the two input registers holding the float32. */
  address: number;
  quantity: Quantity;
  /** 0, 1, 2 for L1, L2, L3 of a per-phase quantity. */
  phase?: number;
}

export interface RegisterMap {
  model: MeterModel;
  description: string;
  phases: 1 | 3;
  registers: readonly RegisterDef[];
  /** Most registers one read may ask for (Eastron: 80). */
  maxRegistersPerRead: number;
  /** Above this total power (W, twice the meter's rating) a value is taken for garbage. */
  maxPowerW: number;
  maxCurrentA: number;
}

export interface ReadBlock {
  address: number;
  count: number;
}

const MAX_EASTRON_READ = 80;

const threePhase = (quantity: Quantity, first: number): RegisterDef[] =>
  [0, 1, 2].map((phase) => ({ address: first + 2 * phase, quantity, phase }));

/** 0x0046 lies inside the read that already spans 0x0000..0x004B: the frequency costs no request. */
const frequency: RegisterDef = { address: 0x0046, quantity: 'frequencyHz' };

const energy: RegisterDef[] = [
  { address: 0x0048, quantity: 'importKwh' },
  { address: 0x004a, quantity: 'exportKwh' },
  { address: 0x0156, quantity: 'totalKwh' },
];

export const REGISTER_MAPS: Readonly<Record<MeterModel, RegisterMap>> = {
  sdm630: {
    model: 'sdm630',
    description: 'Eastron SDM630-Modbus (V1/V2), three-phase, 100 A direct',
    phases: 3,
    registers: [
      ...threePhase('voltageV', 0x0000),
      ...threePhase('currentA', 0x0006),
      ...threePhase('phasePowerW', 0x000c),
      { address: 0x0034, quantity: 'powerW' },
      frequency,
      ...energy,
    ],
    maxRegistersPerRead: MAX_EASTRON_READ,
    maxPowerW: 200_000,
    maxCurrentA: 200,
  },
  // SDM72D-M (V1) has the reduced register set of its protocol V1.1: total power and energies only.
  sdm72: {
    model: 'sdm72',
    description: 'Eastron SDM72D-M, three-phase, 100 A direct; total power and energies only',
    phases: 3,
    registers: [{ address: 0x0034, quantity: 'powerW' }, ...energy],
    maxRegistersPerRead: MAX_EASTRON_READ,
    maxPowerW: 200_000,
    maxCurrentA: 200,
  },
  sdm72v2: {
    model: 'sdm72v2',
    description: 'Eastron SDM72D-M-2, three-phase, 100 A direct, with per-phase values',
    phases: 3,
    registers: [
      ...threePhase('voltageV', 0x0000),
      ...threePhase('currentA', 0x0006),
      ...threePhase('phasePowerW', 0x000c),
      { address: 0x0034, quantity: 'powerW' },
      frequency,
      ...energy,
    ],
    maxRegistersPerRead: MAX_EASTRON_READ,
    maxPowerW: 200_000,
    maxCurrentA: 200,
  },
  // SDM120 is single-phase and has no total-power register (0x0034): its active power is the total.
  sdm120: {
    model: 'sdm120',
    description: 'Eastron SDM120-Modbus, single-phase, 45 A direct',
    phases: 1,
    registers: [
      { address: 0x0000, quantity: 'voltageV', phase: 0 },
      { address: 0x0006, quantity: 'currentA', phase: 0 },
      { address: 0x000c, quantity: 'phasePowerW', phase: 0 },
      { address: 0x000c, quantity: 'powerW' },
      frequency,
      ...energy,
    ],
    maxRegistersPerRead: MAX_EASTRON_READ,
    maxPowerW: 30_000,
    maxCurrentA: 90,
  },
};

/** The registers a MeterReading is made of. */
export function readingRegisters(map: RegisterMap): RegisterDef[] {
  return map.registers.filter((register) => register.quantity !== 'totalKwh');
}

/**
 * Groups float32 registers into reads of at most maxRegisters, spanning at most maxGapRegisters
 * unused registers between two wanted ones. Greedy from the lowest address, which gives the fewest
 * reads possible on a line of addresses; each read ends on its last wanted register.
 */
export function planReads(addresses: readonly number[], maxRegisters: number, maxGapRegisters = Number.POSITIVE_INFINITY): ReadBlock[] {
  const sorted = [...new Set(addresses)].sort((a, b) => a - b);
  const blocks: ReadBlock[] = [];
  for (const address of sorted) {
    const block = blocks.at(-1);
    const blockEnd = block ? block.address + block.count : 0;
    if (block && address - blockEnd <= maxGapRegisters && address + 2 - block.address <= maxRegisters) {
      block.count = Math.max(block.count, address + 2 - block.address);
    } else {
      blocks.push({ address, count: 2 });
    }
  }
  return blocks;
}

/** Bytes on the wire for a plan: each read is an 8-byte request and a 5 + 2·count byte answer. */
export function wireBytes(blocks: readonly ReadBlock[]): number {
  return blocks.reduce((sum, block) => sum + 8 + 5 + 2 * block.count, 0);
}

export function decodeFloat32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat32(offset, false);
}

export function encodeFloat32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, false);
  return bytes;
}

/** Values by register address, taken from the answers to a plan's reads (in the plan's order). */
export function valuesByAddress(blocks: readonly ReadBlock[], answers: readonly Uint8Array[], wanted: readonly RegisterDef[]): Map<number, number> {
  const values = new Map<number, number>();
  for (const register of wanted) {
    const index = blocks.findIndex((block) => register.address >= block.address && register.address + 2 <= block.address + block.count);
    const block = blocks[index];
    const answer = answers[index];
    if (!block || !answer) throw new Error(`register 0x${register.address.toString(16)} is in no read of the plan`);
    values.set(register.address, decodeFloat32(answer, 2 * (register.address - block.address)));
  }
  return values;
}

/** A MeterReading from register values; per-phase arrays have one entry per phase the map has. */
export function toReading(map: RegisterMap, values: ReadonlyMap<number, number>, takenAtMs: number): MeterReading {
  const reading: MeterReading = { importKwh: 0, powerW: 0, voltageV: [], currentA: [], phasePowerW: [], takenAtMs };
  for (const register of readingRegisters(map)) {
    const value = values.get(register.address);
    if (value === undefined) throw new Error(`no value for register 0x${register.address.toString(16)}`);
    const { quantity, phase } = register;
    if (quantity === 'voltageV' || quantity === 'currentA' || quantity === 'phasePowerW') reading[quantity][phase ?? 0] = value;
    else if (quantity === 'powerW' || quantity === 'importKwh' || quantity === 'exportKwh' || quantity === 'frequencyHz') reading[quantity] = value;
  }
  return reading;
}
