// Over 400 lines (about 410): the Modbus server, its framing faults and truth() share one answer path.
//
// A Modbus RTU meter simulator: it answers the register maps of registers.ts over any
// SerialTransport (an in-memory pair in unit tests, a pty in hardware-in-the-loop tests), as a
// correct SDM630 by default, serving the model's whole register image (sim-register-image.ts). Faults are behaviours stacked on top of the correct answer, in the
// manner of zwave-js' MockController: the built-in knobs (setBehaviour) first, then any hook a test
// adds (addBehaviour). truth() says what the meter held and what it served, answer by answer.
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { REGISTER_MAPS, type MeterModel, type RegisterMap } from './registers.js';
import { buildExceptionResponse, buildReadResponse, READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS, scanRequest, type ReadRequest } from './rtu-frame.js';
import { HOLDING_BLOCKS, holdingImage, INPUT_BLOCKS, inputImage, type MeterSetup, type RegisterBlock, type RegisterWords } from './sim-register-image.js';
import type { SerialTransport } from './transport.js';

export interface SimBehaviour {
  /** Total active power being drawn; the import register integrates it over the clock. */
  powerW: number;
  /** Share (0..1) of answers sent with a broken CRC. */
  corruptShare: number;
  /** Share of requests left unanswered. */
  dropShare: number;
  /** Share of answers preceded by a few noise bytes. */
  noiseShare: number;
  /** Share of answers sent in two pieces (a partial frame, then its tail). */
  splitShare: number;
  /** Added before every answer. */
  delayMs: number;
  /** Answers nothing at all. */
  silent: boolean;
  /** Answers every read with this exception code (0 = off). */
  exceptionCode: number;
}

export interface SimValues {
  voltageV: number[];
  currentA: number[];
  phasePowerW: number[];
  powerW: number;
  frequencyHz: number;
  importKwh: number;
  exportKwh: number;
  totalKwh: number;
}

/** The answer a behaviour may alter: chunks are separate writes, in order, gapMs apart, after delayMs. */
export interface SimAnswer {
  chunks: Uint8Array[];
  delayMs: number;
  gapMs: number;
  /** What was done to the correct answer: corrupted, dropped, noise, split, exception, silent. */
  tags: string[];
}

export type SimHook = (request: ReadRequest, answer: SimAnswer, sim: MeterSimulator) => SimAnswer;

export interface ServedAnswer {
  atMs: number;
  request: ReadRequest;
  /** The meter's values (as float32, as served) when it answered. */
  values: SimValues;
  tags: string[];
  /** True when the answer went out as a correct frame with the meter's values. */
  intact: boolean;
}

export interface SimStats {
  requests: number;
  intact: number;
  corrupted: number;
  dropped: number;
  exceptions: number;
  /** Requests for other units, or frames the meter could not parse. */
  ignored: number;
}

export interface SimTruth {
  model: MeterModel;
  unit: number;
  atMs: number;
  values: SimValues;
  /** Input register address (hex) → float32 value, for every register the model lists. */
  registers: Record<string, number>;
  behaviour: SimBehaviour;
  stats: SimStats;
  /** The latest answers, oldest first. */
  served: ServedAnswer[];
}

export interface MeterSimulatorOptions {
  transport: SerialTransport;
  model?: MeterModel;
  unit?: number;
  clock?: Clock;
  /** Numbers in [0, 1) for the fault shares; pass seededRandom(n) for reproducible runs. */
  random?: () => number;
  voltageV?: number;
  initialImportKwh?: number;
  exportKwh?: number;
  /** Answer exception 2 to reads that span registers the model does not have (some firmware does); else those read as 0. */
  refuseGaps?: boolean;
  /** Power factor while drawing power (default 0.99; 1 with no load). */
  powerFactor?: number;
  /** Default 50. */
  frequencyHz?: number;
  /** The serial line and number the setup registers report (default 9600 8N1, serial 10000000 + unit). */
  setup?: Partial<Omit<MeterSetup, 'unit'>>;
  /** How many served answers truth() keeps. Default 10,000. */
  keepServed?: number;
  behaviour?: Partial<SimBehaviour>;
}

export const DEFAULT_BEHAVIOUR: SimBehaviour = {
  powerW: 7400,
  corruptShare: 0,
  dropShare: 0,
  noiseShare: 0,
  splitShare: 0,
  delayMs: 0,
  silent: false,
  exceptionCode: 0,
};

const MS_PER_HOUR = 3_600_000;
const DEFAULT_POWER_FACTOR = 0.99;
/** Small differences between phases, so that a swapped phase shows in a test. */
const PHASE_VOLTAGE_OFFSETS_V = [0, 0.6, -0.9];
/** A European grid; the agent reads it from 0x0046 for INFO and /metrics. */
const SUPPLY_FREQUENCY_HZ = 50;
const MAX_PENDING_BYTES = 512;

const flip = (bytes: Uint8Array, index: number) => {
  const copy = bytes.slice();
  copy[index] = copy[index]! ^ 0xff;
  return copy;
};

/** The built-in knobs, as hooks applied in this order. */
const BUILT_IN: SimHook[] = [
  (request, answer, sim) =>
    sim.behaviour().exceptionCode
      ? { ...answer, chunks: [buildExceptionResponse(request.unit, request.functionCode, sim.behaviour().exceptionCode)], tags: [...answer.tags, 'exception'] }
      : answer,
  (_request, answer, sim) => (sim.behaviour().silent ? { ...answer, chunks: [], tags: [...answer.tags, 'silent'] } : answer),
  (_request, answer, sim) => (sim.chance(sim.behaviour().dropShare) ? { ...answer, chunks: [], tags: [...answer.tags, 'dropped'] } : answer),
  (_request, answer, sim) => {
    const last = answer.chunks.at(-1);
    if (!last || !sim.chance(sim.behaviour().corruptShare)) return answer;
    return { ...answer, chunks: [...answer.chunks.slice(0, -1), flip(last, last.length - 1)], tags: [...answer.tags, 'corrupted'] };
  },
  (_request, answer, sim) => {
    if (answer.chunks.length === 0 || !sim.chance(sim.behaviour().noiseShare)) return answer;
    const noise = Uint8Array.from({ length: 1 + Math.floor(sim.random() * 6) }, () => Math.floor(sim.random() * 256));
    return { ...answer, chunks: [noise, ...answer.chunks], tags: [...answer.tags, 'noise'] };
  },
  (_request, answer, sim) => {
    const frame = answer.chunks.at(-1);
    if (!frame || frame.length < 4 || !sim.chance(sim.behaviour().splitShare)) return answer;
    const cut = 1 + Math.floor(sim.random() * (frame.length - 1));
    return { ...answer, chunks: [...answer.chunks.slice(0, -1), frame.slice(0, cut), frame.slice(cut)], tags: [...answer.tags, 'split'] };
  },
  (_request, answer, sim) => ({ ...answer, delayMs: answer.delayMs + sim.behaviour().delayMs }),
];

export class MeterSimulator {
  readonly model: MeterModel;
  readonly unit: number;
  private readonly map: RegisterMap;
  private readonly clock: Clock;
  private readonly hooks: SimHook[] = [];
  private current: SimBehaviour;
  private importKwh: number;
  private maxDemandW: number;
  private readonly holding: RegisterWords;
  private energySinceMs: number | undefined;
  private pendingBytes = new Uint8Array();
  private readonly timers = new Set<TimerHandle>();
  private readonly servedLog: ServedAnswer[] = [];
  private readonly counters: SimStats = { requests: 0, intact: 0, corrupted: 0, dropped: 0, exceptions: 0, ignored: 0 };
  private unsubscribe: Array<() => void> = [];

  constructor(private readonly options: MeterSimulatorOptions) {
    this.model = options.model ?? 'sdm630';
    this.unit = options.unit ?? 1;
    this.map = REGISTER_MAPS[this.model];
    this.clock = options.clock ?? systemClock;
    this.current = { ...DEFAULT_BEHAVIOUR, ...options.behaviour };
    this.importKwh = options.initialImportKwh ?? 1234.5;
    this.maxDemandW = Math.max(0, this.current.powerW);
    const setup: MeterSetup = { baud: 9600, parity: 'none', stopBits: 1, serialNumber: 10_000_000 + this.unit, ...options.setup, unit: this.unit };
    this.holding = holdingImage(this.model, setup);
  }

  async start(): Promise<void> {
    const { transport } = this.options;
    this.energySinceMs = this.clock.now();
    // one answer built (not sent) now, so the first real answer is as quick as the next ones
    this.correctAnswer({ unit: this.unit, functionCode: READ_INPUT_REGISTERS, address: 0, count: this.map.maxRegistersPerRead }, this.values());
    this.unsubscribe = [transport.onData((bytes) => this.receive(bytes))];
    await transport.open();
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.unsubscribe = [];
    for (const timer of this.timers) this.clock.clearTimeout(timer);
    this.timers.clear();
    await this.options.transport.close();
  }

  behaviour(): SimBehaviour {
    return { ...this.current };
  }

  /** Changes knobs at run time; the energy drawn so far at the old power is kept. */
  setBehaviour(patch: Partial<SimBehaviour>): void {
    this.integrateEnergy();
    this.current = { ...this.current, ...patch };
    this.maxDemandW = Math.max(this.maxDemandW, this.current.powerW);
  }

  /** The import register as integrated, unrounded (a state file keeps it across restarts). */
  importRegisterKwh(): number {
    this.integrateEnergy();
    return this.importKwh;
  }

  /** Sets the import register, as a replaced or reset meter would show. */
  setImportKwh(importKwh: number): void {
    this.integrateEnergy();
    this.importKwh = importKwh;
  }

  /** Stacks a hook after the built-in ones; returns the function that removes it. */
  addBehaviour(hook: SimHook): () => void {
    this.hooks.push(hook);
    return () => {
      const index = this.hooks.indexOf(hook);
      if (index >= 0) this.hooks.splice(index, 1);
    };
  }

  random(): number {
    return (this.options.random ?? Math.random)();
  }

  /** True with probability share; draws nothing when share is 0, so knobs left off change no sequence. */
  chance(share: number): boolean {
    return share > 0 && this.random() < share;
  }

  now(): number {
    return this.clock.now();
  }

  values(): SimValues {
    this.integrateEnergy();
    const { powerW } = this.current;
    const phases = this.map.phases;
    const voltageBase = this.options.voltageV ?? 230;
    const voltageV = PHASE_VOLTAGE_OFFSETS_V.slice(0, phases).map((offset) => Math.fround(voltageBase + offset));
    const phasePowerW = voltageV.map(() => Math.fround(powerW / phases));
    const exportKwh = this.options.exportKwh ?? 0;
    const powerFactor = powerW > 0 ? this.powerFactor() : 1;
    return {
      voltageV,
      currentA: phasePowerW.map((w, i) => Math.fround(w / powerFactor / voltageV[i]!)),
      phasePowerW,
      powerW: Math.fround(powerW),
      frequencyHz: Math.fround(SUPPLY_FREQUENCY_HZ),
      importKwh: Math.fround(this.importKwh),
      exportKwh: Math.fround(exportKwh),
      totalKwh: Math.fround(this.importKwh + exportKwh),
    };
  }

  truth(): SimTruth {
    const values = this.values();
    const registers: Record<string, number> = {};
    for (const [address, value] of this.inputImage(values).floats) registers[`0x${address.toString(16).padStart(4, '0')}`] = value;
    return {
      model: this.model,
      unit: this.unit,
      atMs: this.clock.now(),
      values,
      registers,
      behaviour: this.behaviour(),
      stats: { ...this.counters },
      served: [...this.servedLog],
    };
  }

  private powerFactor(): number {
    return this.options.powerFactor ?? DEFAULT_POWER_FACTOR;
  }

  private inputImage(values: SimValues): ReturnType<typeof inputImage> {
    return inputImage(this.model, {
      voltageV: values.voltageV,
      phasePowerW: values.phasePowerW,
      powerW: values.powerW,
      importKwh: values.importKwh,
      exportKwh: values.exportKwh,
      maxDemandW: this.maxDemandW,
      powerFactor: this.powerFactor(),
      frequencyHz: this.options.frequencyHz ?? 50,
    });
  }

  private integrateEnergy(): void {
    const nowMs = this.clock.now();
    if (this.energySinceMs !== undefined) this.importKwh += (Math.max(0, this.current.powerW) * (nowMs - this.energySinceMs)) / 1000 / MS_PER_HOUR;
    this.energySinceMs = nowMs;
  }

  private receive(bytes: Uint8Array): void {
    const joined = new Uint8Array(this.pendingBytes.length + bytes.length);
    joined.set(this.pendingBytes);
    joined.set(bytes, this.pendingBytes.length);
    let buffer = joined;
    for (;;) {
      const scan = scanRequest(buffer);
      if (scan.kind === 'incomplete') {
        buffer = buffer.slice(Math.max(scan.start, buffer.length - MAX_PENDING_BYTES));
        break;
      }
      buffer = buffer.slice(scan.end);
      if (scan.kind === 'other') this.answerOther(scan.unit, scan.functionCode);
      else this.answer(scan.request);
    }
    this.pendingBytes = buffer;
  }

  private answerOther(unit: number, functionCode: number): void {
    if (unit !== this.unit) {
      this.counters.ignored += 1;
      return;
    }
    this.respond({ unit, functionCode, address: 0, count: 0 }, buildExceptionResponse(unit, functionCode, 1), this.values());
  }

  private answer(request: ReadRequest): void {
    if (request.unit !== this.unit) {
      this.counters.ignored += 1;
      return;
    }
    // One snapshot of the values for the bytes and for truth(), so that what it says was served was.
    const values = this.values();
    this.respond(request, this.correctAnswer(request, values), values);
  }

  /**
   * Function 04 (input) and 03 (holding): any count from 1 to the model's maximum, inside one block of
   * the address space (else exception 2); registers the model does not have read as 0, or exception 2
   * with refuseGaps.
   */
  private correctAnswer(request: ReadRequest, values: SimValues): Uint8Array {
    const { unit, functionCode, address, count } = request;
    const input = functionCode === READ_INPUT_REGISTERS;
    if (!input && functionCode !== READ_HOLDING_REGISTERS) return buildExceptionResponse(unit, functionCode, 1);
    if (count < 1 || count > this.map.maxRegistersPerRead) return buildExceptionResponse(unit, functionCode, 3);
    const blocks = input ? INPUT_BLOCKS : HOLDING_BLOCKS;
    if (!blocks.some((block) => insideBlock(block, address, count))) return buildExceptionResponse(unit, functionCode, 2);
    const words = input ? this.inputImage(values).words : this.holding;
    const wanted = Array.from({ length: count }, (_, k) => address + k);
    if (this.options.refuseGaps && wanted.some((register) => !words.has(register))) return buildExceptionResponse(unit, functionCode, 2);
    const bytes = new DataView(new ArrayBuffer(2 * count));
    wanted.forEach((register, k) => bytes.setUint16(2 * k, words.get(register) ?? 0, false));
    return buildReadResponse(unit, functionCode, new Uint8Array(bytes.buffer));
  }

  private respond(request: ReadRequest, correct: Uint8Array, values: SimValues): void {
    this.counters.requests += 1;
    let answer: SimAnswer = { chunks: [correct], delayMs: 0, gapMs: 0, tags: correct[1]! & 0x80 ? ['exception'] : [] };
    for (const hook of [...BUILT_IN, ...this.hooks]) answer = hook(request, answer, this);
    this.record(request, answer, values);
    this.send(answer);
  }

  private record(request: ReadRequest, answer: SimAnswer, values: SimValues): void {
    const tags = [...new Set(answer.tags)];
    const intact = answer.chunks.length > 0 && !tags.some((tag) => tag === 'corrupted' || tag === 'exception' || tag === 'dropped' || tag === 'silent');
    if (intact) this.counters.intact += 1;
    if (tags.includes('corrupted')) this.counters.corrupted += 1;
    if (answer.chunks.length === 0) this.counters.dropped += 1;
    if (tags.includes('exception')) this.counters.exceptions += 1;
    this.servedLog.push({ atMs: this.clock.now(), request, values, tags, intact });
    const keep = this.options.keepServed ?? 10_000;
    if (this.servedLog.length > keep) this.servedLog.splice(0, this.servedLog.length - keep);
  }

  private send(answer: SimAnswer): void {
    let dueMs = answer.delayMs;
    for (const chunk of answer.chunks) {
      this.later(dueMs, () => void this.options.transport.write(chunk).catch(() => undefined));
      dueMs += answer.gapMs;
    }
  }

  private later(delayMs: number, action: () => void): void {
    if (delayMs <= 0) {
      action();
      return;
    }
    const timer = this.clock.setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, delayMs);
    this.timers.add(timer);
  }
}

function insideBlock(block: RegisterBlock, address: number, count: number): boolean {
  return address >= block.first && address + count <= block.end;
}
