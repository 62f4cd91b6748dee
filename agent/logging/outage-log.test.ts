import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryLogger } from './testing/memory-logger.js';
import { OutageLog } from './outage-log.js';

describe('outage log', () => {
  it('logs the change, a count every summary period and the recovery — never one line per failure', () => {
    const log = createMemoryLogger();
    const outage = new OutageLog(log, { events: { down: 'kafka_down', still: 'kafka_still_down', up: 'kafka_up' }, summaryEveryMs: 60_000 });
    for (let second = 0; second < 150; second++) outage.failure(second * 1000, { error: 'ECONNREFUSED' });
    assert.equal(outage.isDown, true);
    outage.success(150_000);
    outage.success(151_000);
    assert.deepEqual(log.lines.map((l) => l.event), ['kafka_down', 'kafka_still_down', 'kafka_still_down', 'kafka_up']);
    assert.deepEqual(log.lines.map((l) => l.priority), ['warning', 'warning', 'warning', 'notice']);
    assert.equal(log.lines[3]!.fields.failures, 150);
    assert.equal(log.lines[3]!.fields.down_ms, 150_000);
  });
});
