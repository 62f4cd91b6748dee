// The one rule behind GET /health's status, as a pure function of the agent's snapshot:
// fault if any fault is active; degraded if the meter is not healthy, an enabled broker is
// disconnected, the outbox holds an event older than a minute, or the local store lags (not open, a
// failing or stalled worker, a session event uncommitted for over STORE_PENDING_MAX_AGE_MS); else ok.
import type { AgentSnapshot } from '../snapshot.js';

export type HealthStatus = 'ok' | 'degraded' | 'fault';

export interface HealthAssessment {
  status: HealthStatus;
  /** Why it is not ok, one short phrase each: "fault relay_welded", "kafka disconnected". */
  reasons: string[];
}

/** Telemetry older than this waiting in the outbox means delivery is falling behind. */
export const OUTBOX_MAX_AGE_MS = 60_000;
/** A session event not committed after this long: the disk (an SD card) is failing to keep up. */
export const STORE_PENDING_MAX_AGE_MS = 10_000;

export function assessHealth(snapshot: AgentSnapshot): HealthAssessment {
  const faults = snapshot.faults.map((fault) => `fault ${fault.code}`);
  if (faults.length > 0) return { status: 'fault', reasons: faults };

  const { kafka, mqtt, outbox, store } = snapshot.telemetry;
  const reasons = [
    store.state !== 'ok' && store.state !== 'closed' ? `store ${store.state}` : undefined,
    store.pending > 0 && store.oldestPendingAgeMs > STORE_PENDING_MAX_AGE_MS
      ? `store pending ${store.pending}, oldest ${Math.round(store.oldestPendingAgeMs / 1000)} s`
      : undefined,
    snapshot.meter.qosClass !== 'healthy' ? `meter ${snapshot.meter.qosClass}` : undefined,
    kafka.enabled && !kafka.connected ? 'kafka disconnected' : undefined,
    mqtt.enabled && !mqtt.connected ? 'mqtt disconnected' : undefined,
    outbox.depth > 0 && outbox.oldestAgeMs > OUTBOX_MAX_AGE_MS ? `outbox oldest ${Math.round(outbox.oldestAgeMs / 1000)} s` : undefined,
  ].filter((reason): reason is string => reason !== undefined);
  return { status: reasons.length > 0 ? 'degraded' : 'ok', reasons };
}

export function httpStatusFor(status: HealthStatus): 200 | 503 {
  return status === 'fault' ? 503 : 200;
}
