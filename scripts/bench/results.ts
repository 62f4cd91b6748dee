// What .bench/results.json holds: when and where, the settings, and every benchmark's outcome
// (its figures, or the error that kept it from measuring them).
import type { AckPart, FaultPart, FleetPart, HealthPart, MeterPart, Percentiles, SlowStoragePart } from './parts.js';
import type { MachineInfo } from './proc.js';
import type { BenchSettings } from './settings.js';
import type { FootprintWindow } from './footprint.js';

export type Outcome<T> = { ok: true; data: T } | { ok: false; error: string };

export interface StartupResults {
  runs: number;
  readyMs: number;
  readyRunsMs: number[];
  bareNodeFirstLineMs: number;
}

export interface FootprintResults {
  idle: FootprintWindow;
  charging: FootprintWindow;
  stateAfterCharging: string;
  /** CONSUMO of the footprint agent over the charging window: sample → broker append. */
  sampleToAppendMs?: Percentiles;
}

export interface OutageResults {
  outageS: number;
  stateDuringOutage: string;
  brokerDown: { writeBytesPerHour: number; writeCallBytesPerHour: number; cpuShare: number };
  drained: boolean;
  backlogMessages: number;
  batches: number;
  reconnectS: number | null;
  drainedS: number | null;
  drainRatePerS: number | null;
  missing: number;
  duplicates: number;
  messagesRead: number;
}

export interface Results {
  date: string;
  elapsedS: number;
  machine: MachineInfo;
  backgroundLoad: { busyShare: number; loadavg: string };
  settings: BenchSettings;
  telemetryTopicTimestamps: string;
  parts: {
    health?: Outcome<HealthPart>;
    fault?: Outcome<FaultPart>;
    meter?: Outcome<MeterPart>;
    fleet?: Outcome<FleetPart>;
    ack?: Outcome<AckPart>;
    slowStorage?: Outcome<SlowStoragePart>;
  };
  /** Parts run again alone (BENCH_ONLY) into these results after the run above. */
  reruns?: Array<{ part: string; date: string; loadavg: string }>;
  startup?: Outcome<StartupResults>;
  footprint?: Outcome<FootprintResults>;
  outage?: Outcome<OutageResults>;
}
