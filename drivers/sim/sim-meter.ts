import { loadSimState, SimStateSaver } from '../meter/sim-state-file.js';
import { DriverError, type EnergyMeter, type MeterReading } from '../types.js';

export interface SimMeterOptions {
  powerW: number;
  initialImportKwh: number;
  voltageV: number;
  phases: 1 | 3;
  /** How long a read waits before failing while the meter is silent. */
  timeoutMs: number;
  /** Keeps the import register in this file across restarts (sim-state-file.ts); it wins over initialImportKwh. */
  statePath?: string;
  /** Whether current flows now (contact closed and a vehicle plugged). */
  flowing: () => boolean;
  now?: () => number;
}

const MS_PER_HOUR = 3_600_000;

/** An energy meter whose import register integrates the vehicle's power over real time. */
export class SimMeter implements EnergyMeter {
  private importKwh: number;
  private powerW: number;
  private lastMs: number;
  private wasFlowing = false;
  private silent = false;
  private readonly now: () => number;
  private readonly waiting = new Set<ReturnType<typeof setTimeout>>();
  private readonly saver: SimStateSaver | undefined;

  constructor(private readonly options: SimMeterOptions) {
    this.now = options.now ?? Date.now;
    this.importKwh = options.statePath ? (loadSimState(options.statePath)?.importKwh ?? options.initialImportKwh) : options.initialImportKwh;
    this.saver = options.statePath ? new SimStateSaver(options.statePath, () => this.truthKwh) : undefined;
    this.powerW = options.powerW;
    this.lastMs = this.now();
  }

  async open(): Promise<void> {
    void this.saver?.start(); // never waits for the disk: errors stay in saver.lastError
  }

  async close(): Promise<void> {
    await this.saver?.stop();
    for (const timer of this.waiting) clearTimeout(timer);
    this.waiting.clear();
  }

  setSilent(silent: boolean): void {
    this.silent = silent;
  }

  setPowerW(powerW: number): void {
    this.advance();
    this.powerW = powerW;
  }

  /** Integrates up to now; call whenever whether current flows changes. */
  advance(): void {
    const nowMs = this.now();
    if (this.wasFlowing) this.importKwh += (this.powerW * (nowMs - this.lastMs)) / MS_PER_HOUR / 1000;
    this.lastMs = nowMs;
    this.wasFlowing = this.options.flowing();
  }

  /** The register as the simulation knows it, for tests. */
  get truthKwh(): number {
    this.advance();
    return this.importKwh;
  }

  read(): Promise<MeterReading> {
    if (this.silent) return this.timeout();
    this.advance();
    const { phases, voltageV } = this.options;
    const powerW = this.wasFlowing ? this.powerW : 0;
    const perPhaseW = powerW / phases;
    return Promise.resolve({
      importKwh: this.importKwh,
      exportKwh: 0,
      frequencyHz: 50,
      powerW,
      voltageV: Array.from({ length: phases }, () => voltageV),
      currentA: Array.from({ length: phases }, () => round(perPhaseW / voltageV, 3)),
      phasePowerW: Array.from({ length: phases }, () => perPhaseW),
      takenAtMs: this.now(),
    });
  }

  private timeout(): Promise<MeterReading> {
    return new Promise((_resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(timer);
        reject(new DriverError('METER_TIMEOUT', `no answer from the simulated meter within ${this.options.timeoutMs} ms`, { kind: 'timeout' }));
      }, this.options.timeoutMs);
      this.waiting.add(timer);
    });
  }
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
