import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { readLedger, storePath } from './store.js';
import { spawnStoreWorker } from './store/worker-host.js';
import { chargingSession } from './testing/charging-session.js';
import { CP, Clock, T0, Writer, consumo, deliver, onDisk, open, put, started, status, tempDir } from './testing/store-fixtures.js';

describe('telemetry store', () => {
  it('keeps its database in WAL mode in the state directory, opened by its worker thread', async () => {
    const dir = tempDir();
    const { store } = open(dir, new Clock());
    await put(store, status(new Clock()));
    assert.equal(store.path, join(dir, 'charger-agent.db'));
    const db = new Database(store.path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
    assert.ok(existsSync(`${store.path}-wal`), 'a WAL file next to the database');
    await store.close();
  });

  it('numbers events with a seq that continues after a clean restart, with ids unique per ledger', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const first = open(dir, clock).store;
    const a = await put(first, status(clock));
    const b = await put(first, status(clock, 'Available'));
    await first.close();
    const second = open(dir, clock).store;
    const c = await put(second, status(clock));
    assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
    assert.match(a.id, /^CP-T-[0-9a-f]{8}-1$/);
    assert.equal(c.id.replace(/-3$/, ''), a.id.replace(/-1$/, ''), 'the same ledger id after a restart');
    await second.close();
  });

  it('keeps CONSUMO in memory while they are acknowledged promptly, and commits them in one batch once they wait too long', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock, { consumoFlushMs: 30_000 });
    for (let i = 1; i <= 29; i += 1) {
      clock.advance(1000);
      await put(store, consumo(clock, i / 1000));
      store.maintain();
      await store.settled();
    }
    assert.equal(onDisk(dir).length, 0, 'nothing written while the oldest sample waited less than consumoFlushMs');
    assert.equal(store.stats().depth, 29);
    clock.advance(1000);
    await put(store, consumo(clock, 0.03));
    clock.advance(1000);
    store.maintain();
    await store.settled();
    const rows = onDisk(dir);
    assert.equal(rows.length, 30, 'every waiting sample committed at once');
    assert.ok(rows.every((row) => row.type === 'CONSUMO'));
    assert.deepEqual(
      (await store.nextBatch(100)).map((entry) => entry.seq),
      rows.map((row) => row.seq),
      'the batch to send has the same messages, in seq order',
    );
    await store.close();
  });

  it('commits waiting CONSUMO at close, so a clean stop loses none', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock);
    for (let i = 1; i <= 5; i += 1) store.append(consumo(clock, i / 1000));
    await store.close();
    assert.equal(onDisk(dir).length, 5);
  });

  it('sends a session event only once committed, merges stored and in-memory messages in seq order, and acknowledged ones are gone for good', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock);
    await put(store, started(clock)); // 1, stored
    await put(store, consumo(clock, 0.001)); // 2, memory
    await put(store, status(clock)); // 3, stored
    await put(store, consumo(clock, 0.002)); // 4, memory
    await store.settled();
    assert.deepEqual((await store.nextBatch(10)).map((entry) => entry.seq), [1, 2, 3, 4]);
    store.acknowledge(await store.nextBatch(3));
    await store.settled();
    assert.deepEqual((await store.nextBatch(10)).map((entry) => entry.seq), [4]);
    await store.close();
    assert.deepEqual(onDisk(dir).map((row) => row.seq), [4], 'acknowledged rows deleted; the last CONSUMO committed at close');
    const reopened = open(dir, clock).store;
    await reopened.opened;
    assert.deepEqual((await reopened.nextBatch(10)).map((entry) => entry.seq), [4], 'only the unacknowledged sample comes back');
    await reopened.close();
  });

  it('when full, deletes the oldest CONSUMO first and never a session event, and says so', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const maxBytes = 256 * 1024;
    const { store, log } = open(dir, clock, { maxBytes, consumoFlushMs: 1000 });
    const sessionSeqs: number[] = [];
    const consumoSeqs: number[] = [];
    for (let i = 1; i <= 3000; i += 1) {
      clock.advance(1000);
      if (i % 100 === 0) sessionSeqs.push((await put(store, status(clock, i % 200 === 0 ? 'Available' : 'Charging'))).seq);
      else consumoSeqs.push((await put(store, consumo(clock, i / 1000))).seq);
      store.maintain();
      await store.settled();
    }
    const stats = store.stats();
    assert.ok(stats.droppedConsumo > 0, 'some CONSUMO were dropped');
    assert.ok(stats.dbBytes <= maxBytes * 1.25, `database pages in use ${stats.dbBytes} stay within the hard cap`);
    const rows = onDisk(dir);
    assert.deepEqual(rows.filter((row) => row.type === 'CP_STATUS').map((row) => row.seq), sessionSeqs, 'every session event is still there');
    const keptConsumo = rows.filter((row) => row.type === 'CONSUMO').map((row) => row.seq);
    assert.deepEqual(keptConsumo, consumoSeqs.slice(consumoSeqs.length - keptConsumo.length), 'the newest CONSUMO are kept');
    const dropped = log.lines.filter((line) => line.event === 'outbox_dropped');
    assert.ok(dropped.length >= 1 && dropped.length <= 3000 / 60 + 1, `at most one outbox_dropped line a minute (${dropped.length})`);
    assert.equal(dropped[0]?.fields.type, 'CONSUMO');
    assert.equal(log.lines.filter((line) => line.event === 'store_error').length, 0, 'the bound held without a write failure');
    await store.close();
    const storedConsumo = onDisk(dir).filter((row) => row.type === 'CONSUMO').length;
    assert.equal(storedConsumo + store.stats().droppedConsumo, consumoSeqs.length, 'each CONSUMO is stored or counted as dropped');
  });

  it('survives a full database (SQLITE_FULL): logs store_error, keeps what it could not write in memory, and writes it once there is room', async () => {
    const dir = tempDir();
    const clock = new Clock();
    // Session events are never evicted, so enough of them fill the database to SQLite's hard page limit.
    const { store, log } = open(dir, clock, { maxBytes: 48 * 1024 });
    const appended: number[] = [];
    for (let i = 0; i < 2000 && store.stats().writeFailures === 0; i += 1) {
      clock.advance(1000);
      const appendedEvent = store.append(status(clock, i % 2 ? 'Available' : 'Charging'));
      appended.push((await appendedEvent.numbered)!.seq);
      await store.settled();
    }
    for (let i = 0; i < 20; i += 1) appended.push((await store.append(status(clock)).numbered)!.seq); // more while full: no throw
    await store.settled();
    const errors = log.lines.filter((line) => line.event === 'store_error');
    assert.ok(errors.length >= 1, 'store_error logged');
    assert.equal(errors[0]?.fields.code, 'SQLITE_FULL');
    assert.ok(errors.length <= 2, `one line per outage, not one per failed write (${errors.length})`);
    assert.ok(store.stats().pending >= 21, `the events that could not be written are pending in memory (${store.stats().pending})`);
    assert.equal(store.stats().state, 'failing');
    assert.deepEqual((await store.nextBatch(10_000)).map((entry) => entry.seq), appended.slice(0, appended.length - store.stats().pending), 'only committed session events are sent');

    // Kafka acknowledges the oldest half: their rows are deleted, which makes room.
    store.acknowledge((await store.nextBatch(Math.floor(appended.length / 2))));
    clock.advance(10_000);
    store.maintain();
    await store.settled();
    assert.equal(store.stats().pending, 0, 'the held events were written on retry');
    assert.ok(log.lines.some((line) => line.event === 'store_recovered'));
    await store.close();
    const reopened = open(dir, clock, { maxBytes: 48 * 1024 }).store;
    await reopened.opened;
    assert.deepEqual(
      (await reopened.nextBatch(10_000)).map((entry) => entry.seq),
      appended.slice(Math.floor(appended.length / 2)),
      'after a restart, exactly the unacknowledged events are there',
    );
    await reopened.close();
  });

  it('never drops a session event at the memory bound, however many wait for a disk that refuses them', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock, { maxBytes: 48 * 1024, memoryMaxEntries: 25 });
    while (store.stats().writeFailures === 0) {
      clock.advance(1000);
      await store.append(status(clock)).numbered;
      await store.settled();
    }
    // The disk is full: from here every session event waits in memory, 4 times past the bound.
    const held: Array<Promise<boolean>> = [];
    const seqs: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      const appended = store.append(status(clock, i % 2 ? 'Available' : 'Charging'));
      held.push(appended.durable);
      seqs.push((await appended.numbered)!.seq);
      await put(store, consumo(clock, i / 1000, `H${i}`)).catch(() => undefined);
    }
    const stats = store.stats();
    assert.ok(stats.pending >= 100, `every session event is still held (${stats.pending} waiting in memory, bound 25)`);
    assert.ok(stats.droppedConsumo > 0, 'CONSUMO went instead');
    // Room again: Kafka acknowledged everything that was stored.
    store.acknowledge(await store.nextBatch(100_000));
    clock.advance(10_000);
    store.maintain();
    await store.settled();
    assert.deepEqual(await Promise.all(held), held.map(() => true), 'each of them committed');
    const stored = new Set(onDisk(dir).map((row) => row.seq));
    assert.deepEqual(seqs.filter((seq) => !stored.has(seq)), [], 'all 100 are in the outbox');
    await store.close();
  });

  it('a worker that stops answering is a logged store fault (store_stalled), and appends still return at once', async () => {
    const dir = tempDir();
    const clock = new Clock();
    // A worker that opens, then answers nothing, as one stuck in an fsync that never returns would.
    const opened = { ledgerId: 'deadbeef', nextSeq: 1, bootId: 'b', sessionCount: 0, disk: { depth: 0, bytes: 0, dbBytes: 0 }, diskMaxSeq: 0 };
    const mute = () =>
      new Worker(`require('node:worker_threads').parentPort.postMessage({ type: 'opened', state: ${JSON.stringify(opened)} }); setInterval(() => {}, 1000);`, { eval: true });
    const { store, log } = open(dir, clock, { stallAfterMs: 200 }, { spawn: mute });
    await store.opened;
    const appended = store.append(started(clock));
    assert.equal((await appended.numbered)?.seq, 1, 'numbered at once, without the worker');
    const deadline = Date.now() + 10_000;
    while (!log.lines.some((line) => line.event === 'store_stalled') && Date.now() < deadline) {
      store.maintain();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const stalled = log.lines.find((line) => line.event === 'store_stalled');
    assert.equal(stalled?.priority, 'err');
    assert.ok(Number(stalled?.fields.waited_ms) > 200);
    const stats = store.stats();
    assert.equal(stats.state, 'stalled');
    assert.equal(stats.pending, 1, 'the session event waits in memory');
    await store.close(300);
    assert.equal(await appended.durable, false, 'never reported durable');
    assert.match(String(log.lines.find((line) => line.event === 'store_error' && line.fields.op === 'close')?.fields.error), /^STORE_CLOSE_TIMEOUT/);
  });

  it('a worker thread that dies with a commit outstanding is a crit store_error; a new worker commits the event, once, and seq goes on', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const workers: Worker[] = [];
    const spawn = (init: Parameters<typeof spawnStoreWorker>[0]) => {
      const worker = spawnStoreWorker(init);
      workers.push(worker);
      return worker;
    };
    const { store, log } = open(dir, clock, { retryAfterFailureMs: 50 }, { spawn });
    assert.equal((await put(store, started(clock, 'S1'))).seq, 1);
    const appended = store.append(started(clock, 'S2'));
    assert.equal((await appended.numbered)?.seq, 2);
    // Before the reply can arrive: the commit of seq 2 may or may not reach the disk. Not awaited, as
    // the host unrefs an idle worker and nothing else would keep this test's loop alive.
    const terminated = workers[0]!.terminate();
    const deadline = Date.now() + 20_000;
    let durable: boolean | undefined;
    void appended.durable.then((value) => (durable = value));
    while ((durable === undefined || workers.length < 2 || store.stats().state !== 'ok') && Date.now() < deadline) {
      clock.advance(100);
      store.maintain();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await terminated;
    assert.equal(durable, true, 'committed, by the first worker or the next');
    assert.equal(workers.length, 2, 'one new worker');
    const died = log.lines.find((line) => line.event === 'store_error' && line.fields.op === 'worker');
    assert.equal(died?.priority, 'crit');
    assert.match(String(died?.fields.error), /^STORE_WORKER_EXIT/);
    assert.equal((await put(store, started(clock, 'S3'))).seq, 3, 'seq goes on from the numbers handed out');
    assert.equal(store.stats().state, 'ok');
    await store.close();
    assert.deepEqual(onDisk(dir).map((row) => row.seq), [1, 2, 3], 'each event once');
    assert.deepEqual(readLedger(dir, 10)?.map((session) => session.id).sort(), ['S1', 'S2', 'S3']);
  });

  it('moves a database that is not one any more aside, keeps it, and starts a fresh one', async () => {
    const dir = tempDir();
    const garbage = Buffer.from('this is not an SQLite database, but it was the ledger once\n'.repeat(100));
    writeFileSync(join(dir, 'charger-agent.db'), garbage);
    const { store, log } = open(dir, new Clock());
    assert.equal((await put(store, status(new Clock()))).seq, 1);
    await store.close();
    const error = log.lines.find((line) => line.event === 'store_error');
    assert.equal(error?.fields.code, 'SQLITE_NOTADB');
    const aside = readdirSync(dir).filter((name) => name.startsWith('charger-agent.db.corrupt-'));
    assert.equal(aside.length, 1);
    assert.deepEqual(readFileSync(join(dir, aside[0]!)), garbage, 'the old file is kept byte for byte');
    assert.equal(error?.fields.moved_to, join(dir, aside[0]!));
  });

  it('keeps a ledger of every session with its readings, kWh, cost and end reason', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock);
    const session = chargingSession({ cpId: CP, driverId: 'DRIVER-42', startMs: T0, seconds: 10, startImportKwh: 100 });
    for (const { atMs, event } of session) {
      clock.ms = atMs;
      store.append(event);
    }
    await store.settled();
    const supplyEnd = session.find(({ event }) => event.type === 'SUPPLY_END')!.event;
    const [ledger] = await store.listSessions(10);
    assert.equal(ledger?.driverId, 'DRIVER-42');
    assert.equal(ledger?.authorizedAt, '2025-03-01T10:00:00.000Z');
    assert.equal(ledger?.startedAt, '2025-03-01T10:00:00.000Z');
    assert.equal(ledger?.endedAt, '2025-03-01T10:00:10.540Z');
    assert.equal(ledger?.endReason, 'unplugged');
    assert.equal(ledger?.kwh, 0.021);
    assert.equal(ledger?.importe, supplyEnd.importe);
    assert.ok(Math.abs(ledger!.importe - 0.021 * 0.2) < 0.005, 'the cost of 0.021 kWh at 0.20, to the cent');
    assert.equal(ledger?.startImportKwh, 100);
    assert.ok(Math.abs((ledger?.lastImportKwh ?? 0) - 100.02056) < 1e-4);
    await store.close();
    assert.deepEqual(readLedger(dir, 10), [ledger], 'the read-only reader sees the same ledger');
    const reopened = open(dir, clock).store;
    assert.equal(await reopened.sessionCount(), 1);
    await reopened.close();
  });

  it('with Kafka off, keeps the ledger but queues nothing', async () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock, { outbox: false });
    await put(store, started(clock));
    for (let i = 1; i <= 100; i += 1) {
      clock.advance(1000);
      await put(store, consumo(clock, i / 1000));
      store.maintain();
      await store.settled();
    }
    assert.deepEqual(await store.nextBatch(10), []);
    assert.equal(store.stats().depth, 0);
    assert.deepEqual(onDisk(dir), []);
    assert.equal((await store.listSessions(1))[0]?.kwh, 0.06, 'the ledger still follows the session');
    await store.close();
  });
});
