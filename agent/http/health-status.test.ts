import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assessHealth, httpStatusFor } from './health-status.js';
import { healthySnapshot } from './testing/snapshot-fixture.js';

const telemetry = healthySnapshot().telemetry;

describe('health status rule', () => {
  it('a charging agent with a healthy meter and connected brokers is ok', () => {
    assert.deepEqual(assessHealth(healthySnapshot()), { status: 'ok', reasons: [] });
  });

  it('a disabled broker that is not connected is still ok', () => {
    const snapshot = healthySnapshot({ telemetry: { ...telemetry, kafka: { enabled: false, connected: false } } });
    assert.equal(assessHealth(snapshot).status, 'ok');
  });

  it('any active fault is a fault, naming each one, whatever else is wrong', () => {
    const snapshot = healthySnapshot({
      faults: [
        { code: 'relay_welded', sinceMs: 1, latched: true },
        { code: 'meter_stale', sinceMs: 2, latched: true },
      ],
      meter: { ...healthySnapshot().meter, qosClass: 'down' },
    });
    assert.deepEqual(assessHealth(snapshot), { status: 'fault', reasons: ['fault relay_welded', 'fault meter_stale'] });
  });

  for (const qosClass of ['degraded', 'critical', 'down'] as const) {
    it(`a ${qosClass} meter makes the agent degraded`, () => {
      const snapshot = healthySnapshot({ meter: { ...healthySnapshot().meter, qosClass } });
      assert.deepEqual(assessHealth(snapshot), { status: 'degraded', reasons: [`meter ${qosClass}`] });
    });
  }

  it('an enabled broker that is disconnected makes the agent degraded', () => {
    const snapshot = healthySnapshot({
      telemetry: { ...telemetry, kafka: { enabled: true, connected: false }, mqtt: { enabled: true, connected: false } },
    });
    assert.deepEqual(assessHealth(snapshot), { status: 'degraded', reasons: ['kafka disconnected', 'mqtt disconnected'] });
  });

  it('an outbox whose oldest event waits more than 60 s makes the agent degraded, 60 s exactly does not', () => {
    const at = (oldestAgeMs: number) => healthySnapshot({ telemetry: { ...telemetry, outbox: { ...telemetry.outbox, oldestAgeMs } } });
    assert.equal(assessHealth(at(60_000)).status, 'ok');
    assert.deepEqual(assessHealth(at(61_000)), { status: 'degraded', reasons: ['outbox oldest 61 s'] });
  });

  it('only a fault answers 503', () => {
    assert.equal(httpStatusFor('ok'), 200);
    assert.equal(httpStatusFor('degraded'), 200);
    assert.equal(httpStatusFor('fault'), 503);
  });
});
