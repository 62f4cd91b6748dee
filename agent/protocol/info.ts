// The reply to INFO: one line of JSON built from a snapshot, for people and scripts (`ctl info`).
// Field names are snake_case with units, like the telemetry; absent values are null, never 0.
import type { AgentSnapshot } from '../snapshot.js';

export interface InfoReply {
  state: string;
  cp_id: string;
  in_service: boolean;
  plugged: boolean;
  session: { id: string; driver: string; kwh: number; importe: number; started_at?: string } | null;
  meter: {
    import_kwh: number;
    /** null where the meter model has no export register. */
    export_kwh: number | null;
    power_w: number;
    voltage_v: number[];
    current_a: number[];
    /** null where the meter model has no frequency register. */
    frequency_hz: number | null;
    taken_at: string;
  } | null;
  meter_qos: { success_rate: number; qos_class: string };
  faults: Array<{ code: string; since: string; latched: boolean; detail?: string }>;
  relay: { commanded: 'open' | 'closed'; feedback: 'open' | 'closed' };
  uptime_s: number;
  version: string;
}

export function formatInfo(snap: AgentSnapshot): InfoReply {
  const reading = snap.lastReading;
  return {
    state: snap.state,
    cp_id: snap.cpId,
    in_service: snap.inService,
    plugged: snap.plugged,
    session: snap.session
      ? { id: snap.session.id, driver: snap.session.driverId, kwh: snap.session.kwh, importe: snap.session.importe, started_at: snap.session.startedAt }
      : null,
    meter: reading
      ? {
          import_kwh: reading.importKwh,
          export_kwh: reading.exportKwh ?? null,
          power_w: reading.powerW,
          voltage_v: reading.voltageV,
          current_a: reading.currentA,
          frequency_hz: reading.frequencyHz ?? null,
          taken_at: new Date(reading.takenAtMs).toISOString(),
        }
      : null,
    meter_qos: { success_rate: snap.meter.successRate, qos_class: snap.meter.qosClass },
    faults: snap.faults.map((f) => ({ code: f.code, since: new Date(f.sinceMs).toISOString(), latched: f.latched, detail: f.detail })),
    relay: { commanded: snap.relay.commandedClosed ? 'closed' : 'open', feedback: snap.relay.feedbackClosed ? 'closed' : 'open' },
    uptime_s: snap.uptimeSeconds,
    version: snap.version,
  };
}
