// An Eastron meter read over Modbus RTU: the register map's reads, one after the other, decoded
// into a MeterReading and refused when implausible.
import { DriverError, type EnergyMeter, type MeterReading } from '../types.js';
import type { LineStats, ModbusRtuClient } from './modbus-rtu.js';
import { implausibility } from './plausibility.js';
import { planReads, readingRegisters, REGISTER_MAPS, toReading, valuesByAddress, type MeterModel, type ReadBlock, type RegisterMap } from './registers.js';

export interface ModbusMeterOptions {
  client: ModbusRtuClient;
  unit: number;
  model: MeterModel;
  /** Epoch milliseconds for takenAtMs. Default Date.now. */
  now?: () => number;
}

const ILLEGAL_DATA_ADDRESS = 2;

export class ModbusEnergyMeter implements EnergyMeter {
  private readonly map: RegisterMap;
  private plan: ReadBlock[];
  private gapless = false;
  private previous: MeterReading | undefined;

  constructor(private readonly options: ModbusMeterOptions) {
    this.map = REGISTER_MAPS[options.model];
    this.plan = planReads(readingRegisters(this.map).map((r) => r.address), this.map.maxRegistersPerRead);
  }

  /** The reads one full reading takes. */
  get plannedReads(): readonly ReadBlock[] {
    return this.plan;
  }

  /** Counts of the line below (attempts, errors by kind), cumulative since this meter was made. */
  lineStats(): LineStats {
    return this.options.client.stats();
  }

  open(): Promise<void> {
    return this.options.client.open();
  }

  close(): Promise<void> {
    return this.options.client.close();
  }

  async read(): Promise<MeterReading> {
    const now = this.options.now ?? Date.now;
    const requestedAtMs = now();
    const answers = await this.readPlan();
    const reading = toReading(this.map, valuesByAddress(this.plan, answers, readingRegisters(this.map)), now());
    reading.requestedAtMs = requestedAtMs;
    const problem = implausibility(reading, this.map, this.previous);
    if (problem) {
      const where = `unit ${this.options.unit} on ${this.options.client.path}`;
      throw new DriverError('METER_IMPLAUSIBLE', `${where}: ${problem}; reading refused`, { kind: 'implausible', unit: this.options.unit, path: this.options.client.path });
    }
    this.previous = reading;
    return reading;
  }

  private async readPlan(): Promise<Uint8Array[]> {
    const answers: Uint8Array[] = [];
    try {
      for (const block of this.plan) answers.push(await this.options.client.readInputRegisters(this.options.unit, block.address, block.count));
      return answers;
    } catch (error) {
      if (!this.refusesGaps(error)) throw error;
      // Some meters refuse reads that span registers they do not have: read only mapped ones from now on.
      this.gapless = true;
      this.plan = planReads(readingRegisters(this.map).map((r) => r.address), this.map.maxRegistersPerRead, 0);
      return this.readPlan();
    }
  }

  private refusesGaps(error: unknown): boolean {
    if (this.gapless || !(error instanceof DriverError) || error.fields.exceptionCode !== ILLEGAL_DATA_ADDRESS) return false;
    const gaplessPlan = planReads(readingRegisters(this.map).map((r) => r.address), this.map.maxRegistersPerRead, 0);
    return gaplessPlan.length !== this.plan.length || gaplessPlan.some((block, i) => block.count !== this.plan[i]!.count);
  }
}
