// Snapshots for the tests of /health and /metrics: a healthy charging agent, changed per test.
// Only tests import it.
import type { AgentSnapshot } from '../../snapshot.js';

export function healthySnapshot(overrides: Partial<AgentSnapshot> = {}): AgentSnapshot {
  return {
    cpId: 'CP-001',
    version: '0.1.0',
    state: 'Charging',
    inService: true,
    faults: [],
    relay: { commandedClosed: true, feedbackClosed: true },
    plugged: true,
    session: { id: 'CP-001-20250101T120000Z-1', driverId: 'DRIVER-42', kwh: 1.25, importe: 0.25, startedAt: '2025-01-01T12:00:00.000Z' },
    uptimeSeconds: 3600.5,
    meter: { successRate: 0.99, qosClass: 'healthy', reads: 1000, errors: 10, errorsByKind: { crc: 6, timeout: 4 }, connected: true, lastGoodReadingMs: Date.now() },
    telemetry: {
      store: { state: 'ok', pending: 0, oldestPendingAgeMs: 0, writeFailures: 0 },
      kafka: { enabled: true, connected: true },
      mqtt: { enabled: false, connected: false },
      outbox: { depth: 2, oldestAgeMs: 800, droppedConsumo: 0, bytes: 512 },
    },
    healthChecks: { ok: 42, ko: 1 },
    ...overrides,
  };
}
