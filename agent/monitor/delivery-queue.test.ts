import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { DeliveryQueue, type QueuedMessage } from './delivery-queue.js';
import { FakeSink } from './testing/fake-sink.js';

const msg = (value: string, droppable = false): QueuedMessage => ({ key: 'CP-001', value, droppable });

function queue(sink: FakeSink, extra: Partial<ConstructorParameters<typeof DeliveryQueue>[0]> = {}) {
  const log = createMemoryLogger();
  const q = new DeliveryQueue({ link: 'kafka', sink, topic: 'monitor-events', log, maxMessages: 100, retryInitialMs: 5, retryMaxMs: 20, ...extra });
  return { q, log };
}

/** Retries a long, fixed 30 s away: nothing is retried while the test looks. */
const NO_RETRY_WHILE_TESTING = { retryInitialMs: 60_000, retryMaxMs: 60_000, random: () => 0.5 };

/** Resolves once the queue has no message left. */
async function drained(q: DeliveryQueue): Promise<void> {
  while (q.status().depth > 0) await once(q, 'sent');
}

describe('delivery queue', () => {
  it('sends each message to the topic with its key, in order', async () => {
    const sink = new FakeSink();
    const { q } = queue(sink);
    for (const value of ['a', 'b', 'c']) q.push(msg(value));
    await drained(q);
    assert.deepEqual(sink.acknowledged, ['a', 'b', 'c'].map((value) => ({ topic: 'monitor-events', key: 'CP-001', value })));
    assert.equal(q.status().sent, 3);
  });

  it('keeps what a broker that is down did not take, and sends it in order when it is back', async () => {
    const sink = new FakeSink();
    sink.up = false;
    const { q, log } = queue(sink);
    q.push(msg('first'));
    await once(q, 'failed');
    q.push(msg('second'));
    q.push(msg('third'));
    assert.equal(q.status().depth, 3);
    sink.up = true;
    await drained(q);
    assert.deepEqual(sink.acknowledged.map((m) => m.value), ['first', 'second', 'third']);
    const events = log.lines.map((line) => line.event);
    assert.equal(events.filter((e) => e === 'monitor_delivery_failed').length, 1, 'one line when it goes down, not one per retry');
    assert.ok(events.includes('monitor_delivery_resumed'));
    assert.equal(log.lines.find((l) => l.event === 'monitor_delivery_failed')?.fields.link, 'kafka');
  });

  it('retries a sink that could not start', async () => {
    const sink = new FakeSink();
    sink.startFailures = 2;
    const { q } = queue(sink);
    q.push(msg('hello'));
    await drained(q);
    assert.equal(sink.starts, 3);
    assert.deepEqual(sink.acknowledged.map((m) => m.value), ['hello']);
  });

  it('is bounded: when full it drops periodic health checks before failures and recoveries', async () => {
    const sink = new FakeSink();
    sink.up = false;
    const { q, log } = queue(sink, { maxMessages: 3, ...NO_RETRY_WHILE_TESTING });
    q.push(msg('failure-1'));
    await once(q, 'failed');
    q.push(msg('summary-1', true));
    q.push(msg('summary-2', true));
    q.push(msg('recovered-1'));
    q.push(msg('failure-2'));
    assert.deepEqual(q.status(), { link: { enabled: true, connected: false }, depth: 3, sent: 0, dropped: 2 });
    sink.up = true;
    const stopping = q.stop(1000);
    await stopping;
    assert.deepEqual(sink.acknowledged.map((m) => m.value), ['failure-1', 'recovered-1', 'failure-2']);
    assert.ok(log.lines.some((line) => line.event === 'monitor_queue_dropped'));
  });

  it('drops the oldest message when nothing droppable is left', async () => {
    const sink = new FakeSink();
    sink.up = false;
    const { q } = queue(sink, { maxMessages: 2, ...NO_RETRY_WHILE_TESTING });
    q.push(msg('one'));
    await once(q, 'failed');
    q.push(msg('two'));
    q.push(msg('three'));
    sink.up = true;
    await q.stop(1000);
    assert.deepEqual(sink.acknowledged.map((m) => m.value), ['two', 'three']);
  });

  it('stop gives a hanging broker a bounded time, then stops the sink', async () => {
    const sink = new FakeSink();
    sink.hang = true;
    const { q, log } = queue(sink);
    q.push(msg('stuck'));
    await q.stop(20);
    assert.ok(sink.stopped);
    assert.ok(log.lines.some((line) => line.event === 'monitor_queue_abandoned' && line.fields.depth === 1));
  });

  it('a send that never settles counts as failed after the guard time', async () => {
    const sink = new FakeSink();
    sink.hang = true;
    const { q } = queue(sink, { sendGuardMs: 10, ...NO_RETRY_WHILE_TESTING });
    q.push(msg('stuck'));
    const [error] = await once(q, 'failed');
    assert.match((error as Error).message, /MONITOR_SEND_TIMEOUT/);
    await q.stop(10);
  });
});
