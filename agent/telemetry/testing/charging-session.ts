// Test support, never imported by the daemon: the telemetry of a charging session as the real charging
// core emits it (authorize, plug, a meter reading every second, unplug), with the time of each event.
import type { MeterReading } from '../../../drivers/types.js';
import { initialState, next } from '../../charging/state-machine.js';
import type { CoreConfig, CoreEvent, CoreState, TelemetryEvent } from '../../charging/types.js';

export interface SessionPlan {
  cpId: string;
  driverId: string;
  startMs: number;
  /** Meter readings while charging, one a second; each produces a CONSUMO. */
  seconds: number;
  powerW?: number;
  startImportKwh?: number;
  pricePerKwh?: number;
  /** Session numbering, as the controller continues it from the ledger. */
  sessionNo?: number;
}

export interface TimedEvent {
  atMs: number;
  event: TelemetryEvent;
}

/** Every telemetry event of one session, in the order the core emits them. */
export function chargingSession(plan: SessionPlan): TimedEvent[] {
  const config: CoreConfig = {
    cpId: plan.cpId,
    pricePerKwh: plan.pricePerKwh ?? 0.2,
    authorizationTimeoutMs: 60_000,
    consumoIntervalMs: 1000,
    meterStaleMs: 10_000,
    feedbackTimeoutMs: 500,
    hasFeedback: true,
    finalReadingWaitMs: 2500,
  };
  const powerW = plan.powerW ?? 7400;
  let importKwh = plan.startImportKwh ?? 1234.5;
  let state: CoreState = initialState(plan.sessionNo ?? 0);
  let nowMs = plan.startMs;
  const out: TimedEvent[] = [];
  const send = (event: CoreEvent) => {
    const step = next(config, state, event, nowMs);
    state = step.state;
    for (const action of step.actions) if (action.type === 'telemetry') out.push({ atMs: nowMs, event: action.event });
  };
  const reading = (): MeterReading => ({
    importKwh,
    powerW,
    voltageV: [230, 230, 230],
    currentA: [10.7, 10.7, 10.7],
    phasePowerW: [powerW / 3, powerW / 3, powerW / 3],
    takenAtMs: nowMs,
  });

  send({ type: 'meter_reading', reading: reading() });
  send({ type: 'plug', present: true });
  send({ type: 'authorize', driverId: plan.driverId });
  nowMs += 20;
  send({ type: 'relay_feedback', closed: true });
  for (let second = 1; second <= plan.seconds; second += 1) {
    nowMs += 1000;
    importKwh += powerW / 3_600_000; // one second at powerW, in kWh
    send({ type: 'meter_reading', reading: reading() });
  }
  nowMs += 10;
  send({ type: 'plug', present: false });
  nowMs += 10;
  send({ type: 'relay_feedback', closed: false });
  nowMs += 500; // the next poll after the contactor opened: SUPPLY_END bills it
  send({ type: 'meter_reading', reading: reading() });
  return out;
}
