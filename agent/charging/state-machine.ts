// The charging core: next(config, state, event, nowMs) → { state, actions, result, wakeAtMs }.
// Pure: no sockets, no timers, no clock. Safety rules live here:
// - the relay closes only when a session starts charging with a fresh meter reading;
// - every fault emits "open the relay" before anything is reported;
// - the feedback contact is trusted over the command (welded / failed contactor are faults);
// - a session is billed from a meter reading taken after the contactor opened, when one comes in time.
import type { MeterReading } from '../../drivers/types.js';
import type {
  ActiveFault,
  ChargeState,
  CommandResult,
  CoreAction,
  CoreConfig,
  CoreEvent,
  CoreState,
  FaultCode,
  FinalReadingKind,
  SessionEndReason,
  StepResult,
  TelemetryEvent,
} from './types.js';

/** Faults that stay until an operator reset, once their condition is gone. */
const LATCHED: ReadonlySet<FaultCode> = new Set(['relay_welded', 'relay_failure']);

const DRIVER_ID = /^[A-Za-z0-9._:@-]{1,64}$/;

/** CONSUMO goes out on a fresh reading once this share of the interval has passed (poll jitter). */
const CONSUMO_JITTER_SHARE = 0.9;

export function initialState(sessionNo = 0): CoreState {
  return {
    inService: true,
    plugged: false,
    faults: [],
    relay: { commandedClosed: false, feedbackClosed: false },
    emergencyStopActive: false,
    sessionNo,
    reported: 'Available',
  };
}

export function chargeState(state: CoreState): ChargeState {
  if (state.faults.length > 0) return 'Faulted';
  if (state.session?.ending) return 'Finishing';
  if (!state.inService) return 'Unavailable';
  if (state.session?.startedAtMs !== undefined) return 'Charging';
  if (state.session) return 'Authorized';
  return 'Available';
}

/** Working copy for one step: the caller's state is never mutated. */
class Step {
  readonly s: CoreState;
  readonly actions: CoreAction[] = [];
  result: CommandResult | undefined;

  constructor(
    readonly config: CoreConfig,
    state: CoreState,
    readonly nowMs: number,
  ) {
    this.s = structuredClone(state);
  }

  emit(event: Omit<TelemetryEvent, 'cp_id' | 'ts'> & { ts?: string }): void {
    this.actions.push({ type: 'telemetry', event: { cp_id: this.config.cpId, ts: iso(this.nowMs), ...event } });
  }

  commandRelay(close: boolean): void {
    this.s.relay.commandedClosed = close;
    this.actions.push({ type: 'relay', close });
  }

  accept(): void {
    this.result = { accepted: true };
  }

  reject(reason: string): void {
    this.result = { accepted: false, reason };
  }
}

export function next(config: CoreConfig, state: CoreState, event: CoreEvent, nowMs: number): StepResult {
  const step = new Step(config, state, nowMs);
  HANDLERS[event.type](step, event as never);
  settle(step);
  return { state: step.s, actions: step.actions, result: step.result, wakeAtMs: wakeAt(step) };
}

type Handler<E extends CoreEvent['type']> = (step: Step, event: Extract<CoreEvent, { type: E }>) => void;

const HANDLERS: { [E in CoreEvent['type']]: Handler<E> } = {
  authorize: authorize,
  stop: (step) => {
    step.s.inService = false;
    if (step.s.session) endSupply(step, 'stopped_by_central');
    step.accept();
  },
  resume: (step) => {
    if (step.s.faults.length > 0) return step.reject('FAULTED');
    step.s.inService = true;
    step.accept();
  },
  reset: reset,
  plug: (step, event) => {
    step.s.plugged = event.present;
    const session = step.s.session;
    if (!session || session.ending) return;
    if (event.present && session.startedAtMs === undefined) startCharging(step);
    if (!event.present && session.startedAtMs !== undefined) endSupply(step, 'unplugged');
  },
  emergency_stop: (step, event) => {
    step.s.emergencyStopActive = event.active;
    if (event.active) raiseFault(step, 'emergency_stop', 'emergency stop pressed');
    else clearFault(step, 'emergency_stop');
  },
  hardware_fault: (step, event) => {
    if (event.active) raiseFault(step, 'hardware_fault', event.detail ?? 'hardware fault reported');
    else clearFault(step, 'hardware_fault');
  },
  relay_feedback: (step, event) => {
    step.s.relay.feedbackClosed = event.closed;
  },
  meter_reading: (step, event) => meterReading(step, event.reading),
  shutdown: (step) => {
    step.commandRelay(false);
    const session = step.s.session;
    if (!session) return;
    if (session.startedAtMs === undefined) return finishSession(step, 'shutdown');
    closeEnding(step, 'shutdown', 'last_before_open');
  },
  tick: () => {},
};

function authorize(step: Step, event: { driverId: string }): void {
  const { s } = step;
  if (!DRIVER_ID.test(event.driverId)) return step.reject('BAD_ID');
  if (s.faults.length > 0) return step.reject('FAULTED');
  if (!s.inService) return step.reject('UNAVAILABLE');
  if (s.session) return step.reject('BUSY');
  s.sessionNo += 1;
  s.session = {
    id: sessionId(step.config.cpId, step.nowMs, s.sessionNo),
    driverId: event.driverId,
    authorizedAtMs: step.nowMs,
    kwh: 0,
    importe: 0,
  };
  step.emit({
    type: 'SESSION_STARTED',
    user_id: event.driverId,
    session_id: s.session.id,
    kwh: 0,
    importe: 0,
    meter_import_kwh: s.lastReading?.importKwh,
  });
  step.accept();
  if (s.plugged) startCharging(step);
}

function reset(step: Step): void {
  const { s } = step;
  const stillPresent = (fault: ActiveFault) => fault.code === 'relay_welded' && s.relay.feedbackClosed;
  const blocking = s.faults.filter((fault) => fault.latched && stillPresent(fault));
  s.faults = s.faults.filter((fault) => !fault.latched || stillPresent(fault));
  if (blocking.length > 0) return step.reject(blocking[0]!.code.toUpperCase());
  step.accept();
}

function isFresh(step: Step, reading: MeterReading | undefined): boolean {
  return reading !== undefined && step.nowMs - reading.takenAtMs <= step.config.meterStaleMs;
}

function startCharging(step: Step): void {
  const { s } = step;
  const session = s.session!;
  if (s.faults.length > 0 || !s.inService) return;
  if (!isFresh(step, s.lastReading)) {
    raiseFault(step, 'meter_stale', 'no fresh meter reading to start the session from');
    return;
  }
  const startKwh = s.lastReading!.importKwh;
  session.startedAtMs = step.nowMs;
  session.startImportKwh = startKwh;
  session.lastImportKwh = startKwh;
  s.lastConsumoMs = undefined;
  step.commandRelay(true);
}

/**
 * Opens the relay; the session closes once the feedback contact confirms the opening (at once
 * without one) and a reading taken after it came in, or finalReadingWaitMs passed (completeEnding).
 */
function endSupply(step: Step, reason: SessionEndReason): void {
  const session = step.s.session!;
  if (session.startedAtMs === undefined) return finishSession(step, reason);
  step.commandRelay(false);
  session.ending ??= { reason, sinceMs: step.nowMs };
}

/** AVERIADO (when a fault ended the supply) and SUPPLY_END, with the session's final reading. */
function closeEnding(step: Step, reason: SessionEndReason, finalReading: FinalReadingKind): void {
  const session = step.s.session!;
  const fault = session.ending?.fault;
  if (fault) {
    step.emit({
      type: 'AVERIADO',
      ts: iso(fault.atMs),
      user_id: session.driverId,
      session_id: session.id,
      kwh: session.kwh,
      importe: session.importe,
      fault: fault.code,
      power_w: fault.powerW,
      voltage_v: fault.voltageV,
      current_a: fault.currentA,
      meter_import_kwh: session.lastImportKwh,
      final_reading: finalReading,
    });
  }
  finishSession(step, reason, finalReading);
}

function finishSession(step: Step, reason: SessionEndReason, finalReading?: FinalReadingKind): void {
  const session = step.s.session!;
  step.emit({
    type: 'SUPPLY_END',
    user_id: session.driverId,
    session_id: session.id,
    kwh: session.kwh,
    importe: session.importe,
    reason,
    meter_import_kwh: session.lastImportKwh,
    started_at: session.startedAtMs === undefined ? undefined : iso(session.startedAtMs),
    ended_at: iso(step.nowMs),
    final_reading: finalReading,
  });
  step.s.session = undefined;
}

function raiseFault(step: Step, code: FaultCode, detail: string): void {
  const { s } = step;
  step.commandRelay(false); // first, always: a fault opens the relay before it is reported
  if (s.faults.some((fault) => fault.code === code)) return;
  s.faults.push({ code, sinceMs: step.nowMs, latched: LATCHED.has(code), detail });
  const session = s.session;
  if (!session) return;
  if (session.startedAtMs === undefined) return finishSession(step, 'fault');
  // Reported with the final reading (completeEnding); what the meter showed at the fault goes with it.
  const reading = s.lastReading;
  session.ending ??= { reason: 'fault', sinceMs: step.nowMs };
  session.ending.fault ??= { code, atMs: step.nowMs, powerW: reading?.powerW, voltageV: reading?.voltageV, currentA: reading?.currentA };
}

function clearFault(step: Step, code: FaultCode): void {
  step.s.faults = step.s.faults.filter((fault) => fault.code !== code || fault.latched);
}

function meterReading(step: Step, reading: MeterReading): void {
  const { s } = step;
  const previous = s.lastReading;
  if (previous && reading.importKwh < previous.importKwh) return; // the billing register never runs backwards
  s.lastReading = reading;
  if (isFresh(step, reading)) clearFault(step, 'meter_stale');
  const session = s.session;
  if (!session || session.startedAtMs === undefined || session.startImportKwh === undefined) return;
  session.lastImportKwh = reading.importKwh;
  session.kwh = round(reading.importKwh - session.startImportKwh, 3);
  session.importe = round(session.kwh * step.config.pricePerKwh, 4);
  if (session.ending) return;
  const dueMs = step.config.consumoIntervalMs * CONSUMO_JITTER_SHARE;
  if (s.lastConsumoMs !== undefined && reading.takenAtMs - s.lastConsumoMs < dueMs) return;
  s.lastConsumoMs = reading.takenAtMs;
  step.emit({
    type: 'CONSUMO',
    ts: iso(reading.takenAtMs),
    user_id: session.driverId,
    session_id: session.id,
    kwh: session.kwh,
    importe: session.importe,
    power_w: reading.powerW,
    voltage_v: reading.voltageV,
    current_a: reading.currentA,
    meter_import_kwh: reading.importKwh,
  });
}

/** Time-driven rules, evaluated after every event: supervision, expiry, completion, status. */
function settle(step: Step): void {
  superviseRelay(step);
  superviseMeter(step);
  expireAuthorization(step);
  completeEnding(step);
  reportState(step);
}

function superviseRelay(step: Step): void {
  const { s, config, nowMs } = step;
  const relay = s.relay;
  const mismatch = config.hasFeedback && relay.commandedClosed !== relay.feedbackClosed;
  if (!mismatch) {
    relay.mismatchSinceMs = undefined;
    return;
  }
  relay.mismatchSinceMs ??= nowMs;
  if (nowMs - relay.mismatchSinceMs < config.feedbackTimeoutMs) return;
  if (relay.feedbackClosed) raiseFault(step, 'relay_welded', 'feedback contact closed while the relay is commanded open');
  else raiseFault(step, 'relay_failure', 'feedback contact open while the relay is commanded closed');
}

function superviseMeter(step: Step): void {
  const session = step.s.session;
  if (!session || session.startedAtMs === undefined || session.ending) return;
  if (isFresh(step, step.s.lastReading)) return;
  const silentMs = step.nowMs - (step.s.lastReading?.takenAtMs ?? session.startedAtMs);
  raiseFault(step, 'meter_stale', `no good meter reading for ${silentMs} ms during a charge`);
}

function expireAuthorization(step: Step): void {
  const session = step.s.session;
  if (!session || session.startedAtMs !== undefined) return;
  if (step.nowMs - session.authorizedAtMs >= step.config.authorizationTimeoutMs) {
    finishSession(step, 'authorization_expired');
  }
}

/**
 * An ending session closes on the first reading whose read began after the contactor was known open,
 * or with the last good reading finalReadingWaitMs after the opening; a welded contactor never opens,
 * so its session closes at once on the last reading.
 */
function completeEnding(step: Step): void {
  const { s, config, nowMs } = step;
  const ending = s.session?.ending;
  if (!ending) return;
  if (ending.openedAtMs === undefined) {
    if (config.hasFeedback && s.relay.feedbackClosed) {
      if (s.faults.some((fault) => fault.code === 'relay_welded')) closeEnding(step, ending.reason, 'last_before_open');
      return;
    }
    ending.openedAtMs = config.hasFeedback ? nowMs : ending.sinceMs;
  }
  const reading = s.lastReading;
  if (reading && (reading.requestedAtMs ?? reading.takenAtMs) > ending.openedAtMs) return closeEnding(step, ending.reason, 'after_open');
  if (nowMs - ending.openedAtMs >= config.finalReadingWaitMs) closeEnding(step, ending.reason, 'last_before_open');
}

function reportState(step: Step): void {
  const { s } = step;
  const state = chargeState(s);
  if (state === s.reported) return;
  const charging = state === 'Charging' ? s.session : undefined;
  step.emit({
    type: 'CP_STATUS',
    state,
    previous_state: s.reported,
    faults: s.faults.map((fault) => fault.code),
    in_service: s.inService,
    // entering Charging, the durable record of where the session's energy is counted from
    session_id: charging?.id,
    meter_import_kwh: charging?.startImportKwh,
  });
  s.reported = state;
}

/** The earliest deadline at which a tick can change something. */
function wakeAt(step: Step): number | undefined {
  const { s, config } = step;
  const deadlines: number[] = [];
  if (s.relay.mismatchSinceMs !== undefined) deadlines.push(s.relay.mismatchSinceMs + config.feedbackTimeoutMs);
  const session = s.session;
  if (session && session.startedAtMs === undefined) deadlines.push(session.authorizedAtMs + config.authorizationTimeoutMs);
  if (session?.startedAtMs !== undefined && !session.ending && s.lastReading) {
    deadlines.push(s.lastReading.takenAtMs + config.meterStaleMs + 1);
  }
  if (session?.ending?.openedAtMs !== undefined) deadlines.push(session.ending.openedAtMs + config.finalReadingWaitMs);
  return deadlines.length > 0 ? Math.min(...deadlines) : undefined;
}

function sessionId(cpId: string, nowMs: number, sessionNo: number): string {
  const stamp = iso(nowMs).replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${cpId}-${stamp}-${sessionNo}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
