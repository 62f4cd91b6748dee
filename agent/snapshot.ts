// What the agent knows about itself at one instant: read by INFO, GET /health, /metrics and sd_notify STATUS=.
import type { MeterReading } from '../drivers/types.js';
import type { ActiveFault, ChargeState } from './charging/types.js';
import type { TelemetryStatus } from './telemetry/types.js';

export type QosClass = 'healthy' | 'degraded' | 'critical' | 'down';

export interface MeterQos {
  /** Share of good requests in the sliding window, 0..1 (1 when nothing was asked yet). */
  successRate: number;
  qosClass: QosClass;
  reads: number;
  errors: number;
  /** Errors by kind: crc, timeout, exception, garbage, partial, io. */
  errorsByKind: Record<string, number>;
  connected: boolean;
  lastGoodReadingMs?: number;
}

export interface AgentSnapshot {
  cpId: string;
  version: string;
  state: ChargeState;
  inService: boolean;
  faults: ActiveFault[];
  relay: { commandedClosed: boolean; feedbackClosed: boolean };
  plugged: boolean;
  session?: { id: string; driverId: string; kwh: number; importe: number; startedAt?: string };
  lastReading?: MeterReading;
  uptimeSeconds: number;
  meter: MeterQos;
  telemetry: TelemetryStatus;
  healthChecks: { ok: number; ko: number };
}
