// The vocabulary of the pure charging core: states, events in, actions out.
import type { MeterReading } from '../../drivers/types.js';

export type ChargeState = 'Available' | 'Authorized' | 'Charging' | 'Finishing' | 'Unavailable' | 'Faulted';

export type SessionEndReason =
  | 'unplugged'
  | 'stopped_by_central'
  | 'fault'
  | 'authorization_expired'
  | 'shutdown'
  | 'interrupted';

/** Latched faults stay until an operator reset (RESET) once their condition is gone. */
export type FaultCode = 'emergency_stop' | 'relay_welded' | 'relay_failure' | 'meter_stale' | 'hardware_fault';

export interface ActiveFault {
  code: FaultCode;
  sinceMs: number;
  latched: boolean;
  detail?: string;
}

export interface Session {
  id: string;
  driverId: string;
  authorizedAtMs: number;
  /** Set when the relay first closes for this session. */
  startedAtMs?: number;
  startImportKwh?: number;
  lastImportKwh?: number;
  kwh: number;
  importe: number;
  /** Set once the supply is ending: the relay is commanded open, its opening and then a reading after it awaited. */
  ending?: SessionEnding;
}

/** Which meter reading a SUPPLY_END (and AVERIADO) bills: one taken after the contactor opened, or the last one before. */
export type FinalReadingKind = 'after_open' | 'last_before_open';

export interface SessionEnding {
  reason: SessionEndReason;
  /** When the relay was commanded open. */
  sinceMs: number;
  /** When the contactor was known open: the feedback confirmed it, or (without a feedback contact) the command. */
  openedAtMs?: number;
  /** The fault that ended the supply, reported in AVERIADO with the final reading. */
  fault?: { code: FaultCode; atMs: number; powerW?: number; voltageV?: number[]; currentA?: number[] };
}

export interface CoreConfig {
  cpId: string;
  pricePerKwh: number;
  authorizationTimeoutMs: number;
  consumoIntervalMs: number;
  meterStaleMs: number;
  feedbackTimeoutMs: number;
  /** False when the wiring has no feedback contact: the command is then trusted. */
  hasFeedback: boolean;
  /** How long a session, once the contactor is open, waits for a reading taken after the opening before it bills the last one. */
  finalReadingWaitMs: number;
}

export interface CoreState {
  inService: boolean;
  plugged: boolean;
  faults: ActiveFault[];
  relay: { commandedClosed: boolean; feedbackClosed: boolean; mismatchSinceMs?: number };
  emergencyStopActive: boolean;
  session?: Session;
  lastReading?: MeterReading;
  lastConsumoMs?: number;
  /** Sessions started since the counter began; part of the session id. */
  sessionNo: number;
  /** The state last reported in CP_STATUS. */
  reported: ChargeState;
}

export type CoreEvent =
  | { type: 'authorize'; driverId: string }
  | { type: 'stop' }
  | { type: 'resume' }
  | { type: 'reset' }
  | { type: 'plug'; present: boolean }
  | { type: 'emergency_stop'; active: boolean }
  | { type: 'relay_feedback'; closed: boolean }
  | { type: 'meter_reading'; reading: MeterReading }
  | { type: 'hardware_fault'; active: boolean; detail?: string }
  | { type: 'shutdown' }
  | { type: 'tick' };

/** The central system's message types (cp_telemetry), with their field names kept. */
export type TelemetryType = 'SESSION_STARTED' | 'CONSUMO' | 'SUPPLY_END' | 'AVERIADO' | 'CP_STATUS';

export interface TelemetryEvent {
  type: TelemetryType;
  cp_id: string;
  /** When the fact happened (ISO-8601 UTC); for CONSUMO, when the reading was taken. */
  ts: string;
  user_id?: string;
  session_id?: string;
  kwh?: number;
  importe?: number;
  power_w?: number;
  voltage_v?: number[];
  current_a?: number[];
  /** The meter's cumulative import register at this point. */
  meter_import_kwh?: number;
  reason?: SessionEndReason;
  fault?: FaultCode;
  faults?: FaultCode[];
  state?: ChargeState;
  previous_state?: ChargeState;
  in_service?: boolean;
  started_at?: string;
  ended_at?: string;
  /** SUPPLY_END and AVERIADO: whether the billed reading was taken after the contactor opened. */
  final_reading?: FinalReadingKind;
}

export type CoreAction =
  | { type: 'relay'; close: boolean }
  | { type: 'telemetry'; event: TelemetryEvent };

/** The answer to a command event (authorize, stop, resume, reset). */
export type CommandResult = { accepted: true } | { accepted: false; reason: string };

export interface StepResult {
  state: CoreState;
  actions: CoreAction[];
  result?: CommandResult;
  /** The next time the core needs a tick even if nothing happens (deadlines), epoch ms. */
  wakeAtMs?: number;
}
