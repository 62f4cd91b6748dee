import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { applyKafkajsIdlePatch, scheduleCheckPendingRequests } from './kafkajs-idle-patch.js';

function queue(pending: unknown[], throttledUntil = -1) {
  const q = { pending, throttledUntil, throttleCheckTimeoutId: null as NodeJS.Timeout | null, checks: 0, checkPendingRequests: () => void (q.checks += 1) };
  return q;
}

describe('kafkajs idle patch', () => {
  it('schedules no timer when nothing is pending (the 1 ms loop of kafkajs 2.2.4)', () => {
    const q = queue([]);
    scheduleCheckPendingRequests.call(q);
    assert.equal(q.throttleCheckTimeoutId, null);
  });

  it('still checks pending requests: after the throttle, or after 10 ms', async () => {
    const q = queue([{}], Date.now() + 30);
    scheduleCheckPendingRequests.call(q);
    assert.notEqual(q.throttleCheckTimeoutId, null);
    const first = q.throttleCheckTimeoutId;
    scheduleCheckPendingRequests.call(q);
    assert.equal(q.throttleCheckTimeoutId, first, 'one timer at a time');
    const deadline = Date.now() + 5000;
    while (q.checks === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(q.checks, 1);
    assert.equal(q.throttleCheckTimeoutId, null);
  });

  it('is applied to the kafkajs RequestQueue this project pins', () => {
    assert.equal(applyKafkajsIdlePatch(), true);
    const require = createRequire(import.meta.url);
    const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: { scheduleCheckPendingRequests: unknown } };
    assert.equal(RequestQueue.prototype.scheduleCheckPendingRequests, scheduleCheckPendingRequests);
  });
});
