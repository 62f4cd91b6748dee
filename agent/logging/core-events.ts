// What the charging core did, as journal lines: faults raised and cleared, and the telemetry events
// an operator greps for (session_started, session_ended, state_changed). Called by the controller
// after each step, so the order of the lines is the order of the core's decisions.
import type { CoreState, FaultCode, TelemetryEvent } from '../charging/types.js';
import { LOG_EVENTS } from './events.js';
import type { Logger, Priority } from './logger.js';

const FAULT_PRIORITY: Partial<Record<FaultCode, Priority>> = { relay_welded: 'crit', emergency_stop: 'crit' };

export function logFaultChanges(log: Logger, before: CoreState, after: CoreState): void {
  const was = new Set(before.faults.map((f) => f.code));
  const now = new Set(after.faults.map((f) => f.code));
  for (const fault of after.faults) {
    if (!was.has(fault.code)) log.log(FAULT_PRIORITY[fault.code] ?? 'err', LOG_EVENTS.faultRaised, { fault: fault.code, latched: fault.latched, detail: fault.detail });
  }
  for (const code of was) if (!now.has(code)) log.notice(LOG_EVENTS.faultCleared, { fault: code });
}

export function logTelemetry(log: Logger, event: TelemetryEvent): void {
  const session = { session: event.session_id, driver: event.user_id };
  switch (event.type) {
    case 'SESSION_STARTED':
      return log.info(LOG_EVENTS.sessionStarted, session);
    case 'SUPPLY_END':
      return log.notice(LOG_EVENTS.sessionEnded, { ...session, reason: event.reason, kwh: event.kwh, importe: event.importe, meter_import_kwh: event.meter_import_kwh, final_reading: event.final_reading });
    case 'CP_STATUS':
      return log.info(LOG_EVENTS.stateChanged, { from: event.previous_state, to: event.state, faults: event.faults });
    case 'CONSUMO':
      return log.debug('consumo', { ...session, kwh: event.kwh, importe: event.importe, power_w: event.power_w });
    default:
      return undefined;
  }
}
