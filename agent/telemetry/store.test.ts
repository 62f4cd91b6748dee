import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { TelemetryEvent } from '../charging/types.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { openTelemetryStore, readLedger, storePath, type StoreOptions, type TelemetryStore } from './store.js';
import { chargingSession } from './testing/charging-session.js';

const CP = 'CP-T';
const T0 = Date.parse('2025-03-01T10:00:00Z');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'charger-store-'));
  dirs.push(dir);
  return dir;
}

class Clock {
  constructor(public ms = T0) {}
  now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

function open(stateDir: string, clock: Clock, overrides: Partial<StoreOptions> = {}) {
  const log = createMemoryLogger();
  const store = openTelemetryStore({
    stateDir,
    cpId: CP,
    maxBytes: 64 * 1024 * 1024,
    consumoFlushMs: 30_000,
    ledgerCheckpointMs: 60_000,
    outbox: true,
    log,
    now: clock.now,
    ...overrides,
  });
  return { store, log };
}

/** What another process would find in the file now: a second connection sees only committed data. */
function onDisk(stateDir: string): Array<{ seq: number; type: string; id: string }> {
  const db = new Database(storePath(stateDir), { readonly: true });
  try {
    return db.prepare('SELECT seq, type, id FROM outbox ORDER BY seq').all() as Array<{ seq: number; type: string; id: string }>;
  } finally {
    db.close();
  }
}

const status = (clock: Clock, state: 'Charging' | 'Available' = 'Charging'): TelemetryEvent => ({
  type: 'CP_STATUS',
  cp_id: CP,
  ts: new Date(clock.ms).toISOString(),
  state,
  in_service: true,
  faults: [],
});

const consumo = (clock: Clock, kwh: number, sessionId = 'S1'): TelemetryEvent => ({
  type: 'CONSUMO',
  cp_id: CP,
  ts: new Date(clock.ms).toISOString(),
  user_id: 'D1',
  session_id: sessionId,
  kwh,
  importe: Math.round(kwh * 0.2 * 100) / 100,
  power_w: 7400,
  meter_import_kwh: 1000 + kwh,
});

const started = (clock: Clock, sessionId = 'S1'): TelemetryEvent => ({
  type: 'SESSION_STARTED',
  cp_id: CP,
  ts: new Date(clock.ms).toISOString(),
  user_id: 'D1',
  session_id: sessionId,
  kwh: 0,
  importe: 0,
  meter_import_kwh: 1000,
});

describe('telemetry store', () => {
  it('keeps its database in WAL mode in the state directory', () => {
    const dir = tempDir();
    const { store } = open(dir, new Clock());
    store.append(status(new Clock()));
    assert.equal(store.path, join(dir, 'charger-agent.db'));
    const db = new Database(store.path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
    assert.ok(existsSync(`${store.path}-wal`), 'a WAL file next to the database');
    store.close();
  });

  it('numbers events with a seq that continues after a clean restart, with ids unique per ledger', () => {
    const dir = tempDir();
    const clock = new Clock();
    const first = open(dir, clock).store;
    const a = first.append(status(clock));
    const b = first.append(status(clock, 'Available'));
    first.close();
    const second = open(dir, clock).store;
    const c = second.append(status(clock));
    assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
    assert.match(a.id, /^CP-T-[0-9a-f]{8}-1$/);
    assert.equal(c.id.replace(/-3$/, ''), a.id.replace(/-1$/, ''), 'the same ledger id after a restart');
    second.close();
  });

  it('never reuses a seq after a crash, even for CONSUMO that were delivered and never stored', () => {
    const dir = tempDir();
    const clock = new Clock();
    const crashed = open(dir, clock).store;
    const seen = new Set<string>();
    for (let i = 1; i <= 20; i += 1) {
      clock.advance(1000);
      const event = crashed.append(consumo(clock, i / 1000));
      seen.add(event.id);
      crashed.acknowledge(crashed.peek(10));
    }
    assert.equal(onDisk(dir).length, 0, 'acknowledged CONSUMO never reached the disk');
    // No close(): the process "died". A second store opens the same file, as after a restart.
    const restarted = open(dir, clock).store;
    const next = restarted.append(status(clock));
    assert.ok(next.seq > 20, `seq ${next.seq} continues past every seq handed out before the crash`);
    assert.ok(!seen.has(next.id));
    restarted.close();
  });

  it('commits a session event before append() returns, and a SIGKILL right after loses nothing', async () => {
    const dir = tempDir();
    const writer = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./testing/store-writer.ts', import.meta.url)), dir, CP], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const answers = createInterface({ input: writer.stdout })[Symbol.asyncIterator]();
    const clock = new Clock();
    const send = async (event: TelemetryEvent) => {
      writer.stdin.write(JSON.stringify(event) + '\n');
      return String((await answers.next()).value);
    };
    assert.equal(await send(started(clock)), 'appended 1 SESSION_STARTED');
    assert.equal(await send(status(clock)), 'appended 2 CP_STATUS');
    clock.advance(1000);
    assert.equal(await send(consumo(clock, 0.002)), 'appended 3 CONSUMO');
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    writer.kill('SIGKILL');
    await exited;

    assert.deepEqual(
      onDisk(dir).map((row) => [row.seq, row.type]),
      [
        [1, 'SESSION_STARTED'],
        [2, 'CP_STATUS'],
      ],
      'both session events survived; the CONSUMO waited in memory, as designed',
    );
    const { store } = open(dir, clock);
    const [interrupted] = store.recoverInterrupted();
    assert.equal(interrupted?.session.id, 'S1');
    assert.equal(interrupted?.event.reason, 'interrupted');
    store.close();
  });

  it('keeps CONSUMO in memory while they are acknowledged promptly, and commits them in one batch once they wait too long', () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock, { consumoFlushMs: 30_000 });
    for (let i = 1; i <= 29; i += 1) {
      clock.advance(1000);
      store.append(consumo(clock, i / 1000));
      store.maintain();
    }
    assert.equal(onDisk(dir).length, 0, 'nothing written while the oldest sample waited less than consumoFlushMs');
    assert.equal(store.stats().depth, 29);
    clock.advance(1000);
    store.append(consumo(clock, 0.03));
    clock.advance(1000);
    store.maintain();
    const rows = onDisk(dir);
    assert.equal(rows.length, 30, 'every waiting sample committed at once');
    assert.ok(rows.every((row) => row.type === 'CONSUMO'));
    assert.deepEqual(
      store.peek(100).map((entry) => entry.seq),
      rows.map((row) => row.seq),
      'peek sees the same messages, in seq order',
    );
    store.close();
  });

  it('commits waiting CONSUMO at close, so a clean stop loses none', () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock);
    for (let i = 1; i <= 5; i += 1) store.append(consumo(clock, i / 1000));
    store.close();
    assert.equal(onDisk(dir).length, 5);
  });

  it('merges stored and in-memory messages in seq order, and acknowledged ones are gone for good', () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock);
    store.append(started(clock)); // 1, stored
    store.append(consumo(clock, 0.001)); // 2, memory
    store.append(status(clock)); // 3, stored
    store.append(consumo(clock, 0.002)); // 4, memory
    assert.deepEqual(store.peek(10).map((entry) => entry.seq), [1, 2, 3, 4]);
    store.acknowledge(store.peek(3));
    assert.deepEqual(store.peek(10).map((entry) => entry.seq), [4]);
    assert.deepEqual(onDisk(dir), [], 'acknowledged rows deleted');
    store.close();
    const reopened = open(dir, clock).store;
    assert.deepEqual(reopened.peek(10).map((entry) => entry.seq), [4], 'only the unacknowledged sample comes back');
    reopened.close();
  });

  it('when full, deletes the oldest CONSUMO first and never a session event, and says so', () => {
    const dir = tempDir();
    const clock = new Clock();
    const maxBytes = 256 * 1024;
    const { store, log } = open(dir, clock, { maxBytes, consumoFlushMs: 1000 });
    const sessionSeqs: number[] = [];
    const consumoSeqs: number[] = [];
    for (let i = 1; i <= 3000; i += 1) {
      clock.advance(1000);
      if (i % 100 === 0) sessionSeqs.push(store.append(status(clock, i % 200 === 0 ? 'Available' : 'Charging')).seq);
      else consumoSeqs.push(store.append(consumo(clock, i / 1000)).seq);
      store.maintain();
    }
    const stats = store.stats();
    assert.ok(stats.droppedConsumo > 0, 'some CONSUMO were dropped');
    assert.ok(stats.dbBytes <= maxBytes * 1.25, `database pages in use ${stats.dbBytes} stay within the hard cap`);
    const rows = onDisk(dir);
    assert.deepEqual(
      rows.filter((row) => row.type === 'CP_STATUS').map((row) => row.seq),
      sessionSeqs,
      'every session event is still there',
    );
    const keptConsumo = rows.filter((row) => row.type === 'CONSUMO').map((row) => row.seq);
    assert.deepEqual(keptConsumo, consumoSeqs.slice(consumoSeqs.length - keptConsumo.length), 'the newest CONSUMO are kept');
    assert.equal(keptConsumo.length + stats.droppedConsumo + store.stats().inMemory, consumoSeqs.length);
    const dropped = log.lines.filter((line) => line.event === 'outbox_dropped');
    assert.ok(dropped.length >= 1 && dropped.length <= 3000 / 60 + 1, `at most one outbox_dropped line a minute (${dropped.length})`);
    assert.equal(dropped.at(-1)?.fields.total, stats.droppedConsumo);
    assert.equal(dropped[0]?.fields.type, 'CONSUMO');
    assert.equal(log.lines.filter((line) => line.event === 'store_error').length, 0, 'the bound held without a write failure');
    store.close();
  });

  it('survives a full database (SQLITE_FULL): logs store_error, keeps what it could not write in memory, and writes it once there is room', () => {
    const dir = tempDir();
    const clock = new Clock();
    // Session events are never evicted, so enough of them fill the database to SQLite's hard page limit.
    const { store, log } = open(dir, clock, { maxBytes: 48 * 1024 });
    const appended: number[] = [];
    for (let i = 0; i < 2000 && store.stats().writeFailures === 0; i += 1) {
      clock.advance(1000);
      appended.push(store.append(status(clock, i % 2 ? 'Available' : 'Charging')).seq);
    }
    for (let i = 0; i < 20; i += 1) appended.push(store.append(status(clock)).seq); // more while full: no throw
    const errors = log.lines.filter((line) => line.event === 'store_error');
    assert.ok(errors.length >= 1, 'store_error logged');
    assert.equal(errors[0]?.fields.code, 'SQLITE_FULL');
    assert.ok(errors.length <= 2, `one line per outage, not one per failed write (${errors.length})`);
    const held = store.stats().inMemory;
    assert.ok(held >= 21, `the events that could not be written are held in memory (${held})`);
    assert.deepEqual(store.peek(10_000).map((entry) => entry.seq), appended, 'nothing lost, still in seq order');

    // Kafka acknowledges the oldest half: their rows are deleted, which makes room.
    store.acknowledge(store.peek(Math.floor(appended.length / 2)));
    clock.advance(10_000);
    store.maintain();
    assert.equal(store.stats().inMemory, 0, 'the held events were written on retry');
    assert.ok(log.lines.some((line) => line.event === 'store_recovered'));
    store.close();
    const reopened = open(dir, clock, { maxBytes: 48 * 1024 }).store;
    assert.deepEqual(
      reopened.peek(10_000).map((entry) => entry.seq),
      appended.slice(Math.floor(appended.length / 2)),
      'after a restart, exactly the unacknowledged events are there',
    );
    reopened.close();
  });

  it('survives a real full filesystem (ENOSPC on a tiny tmpfs) without losing what was stored', (t) => {
    const mountPoint = tempDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      t.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN); the SQLITE_FULL test above covers the same path');
      return;
    }
    try {
      const clock = new Clock();
      const { store, log } = open(mountPoint, clock, { maxBytes: 64 * 1024 * 1024 });
      const appended: number[] = [];
      for (let i = 0; i < 5000 && store.stats().writeFailures === 0; i += 1) {
        clock.advance(1000);
        appended.push(store.append(started(clock, `S${i}`)).seq);
      }
      assert.ok(store.stats().writeFailures > 0, 'the filesystem filled up');
      const error = log.lines.find((line) => line.event === 'store_error');
      assert.match(String(error?.fields.code), /^SQLITE_(FULL|IOERR)/);
      assert.deepEqual(store.peek(10_000).map((entry) => entry.seq), appended, 'stored and held events, in order');
      store.close();
      const { store: reopened } = open(mountPoint, clock);
      const stored = reopened.peek(10_000).map((entry) => entry.seq);
      assert.deepEqual(stored, appended.slice(0, stored.length), 'what was stored before the disk filled is intact');
      assert.ok(stored.length >= appended.length - 2, `at most the event in flight at the failure is lost at close (${stored.length}/${appended.length})`);
      reopened.close();
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });

  it('moves a database that is not one any more aside, keeps it, and starts a fresh one', () => {
    const dir = tempDir();
    const garbage = Buffer.from('this is not an SQLite database, but it was the ledger once\n'.repeat(100));
    writeFileSync(join(dir, 'charger-agent.db'), garbage);
    const { store, log } = open(dir, new Clock());
    assert.equal(store.append(status(new Clock())).seq, 1);
    store.close();
    const error = log.lines.find((line) => line.event === 'store_error');
    assert.equal(error?.fields.code, 'SQLITE_NOTADB');
    const aside = readdirSync(dir).filter((name) => name.startsWith('charger-agent.db.corrupt-'));
    assert.equal(aside.length, 1);
    assert.deepEqual(readFileSync(join(dir, aside[0]!)), garbage, 'the old file is kept byte for byte');
    assert.equal(error?.fields.moved_to, join(dir, aside[0]!));
  });

  it('keeps a ledger of every session with its readings, kWh, cost and end reason', () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock);
    const session = chargingSession({ cpId: CP, driverId: 'DRIVER-42', startMs: T0, seconds: 10, startImportKwh: 100 });
    for (const { atMs, event } of session) {
      clock.ms = atMs;
      store.append(event);
    }
    const supplyEnd = session.find(({ event }) => event.type === 'SUPPLY_END')!.event;
    assert.equal(store.sessionCount(), 1);
    const [ledger] = store.listSessions(10);
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
    store.close();
    assert.deepEqual(readLedger(dir, 10), [ledger], 'the read-only reader sees the same ledger');
  });

  it('closes an interrupted session with the first reading after the restart, which the meter counted while the ledger slept', () => {
    const dir = tempDir();
    const clock = new Clock();
    const crashed = open(dir, clock).store;
    crashed.append(started(clock));
    crashed.append({ ...status(clock), session_id: 'S1', meter_import_kwh: 1000 });
    for (let second = 1; second <= 20; second += 1) {
      clock.advance(1000);
      crashed.append(consumo(clock, second / 1000));
      crashed.acknowledge(crashed.peek(100));
      crashed.maintain();
    }
    // Crash 20 s in: no checkpoint yet. The restart's first reading shows the register at 1000.021.
    clock.advance(30_000);
    const { store } = open(dir, clock);
    const [recovered] = store.recoverInterrupted({ importKwh: 1000.021, takenAtMs: clock.ms, pricePerKwh: 0.2 });
    assert.equal(recovered?.session.kwh, 0.021);
    assert.equal(recovered?.event.kwh, 0.021);
    assert.equal(recovered?.event.importe, 0.0042);
    assert.equal(recovered?.event.meter_import_kwh, 1000.021);
    assert.equal(store.listSessions(1)[0]?.kwh, 0.021, 'the ledger bills it too');
  });

  it('does not bill an implausible register jump or a register that went backwards after a restart', () => {
    for (const importKwh of [999.5, 1000 + 50 * 2]) {
      const dir = tempDir();
      const clock = new Clock();
      const crashed = open(dir, clock).store;
      crashed.append(started(clock));
      crashed.append({ ...status(clock), session_id: 'S1', meter_import_kwh: 1000 });
      clock.advance(60_000); // a minute later: 100 kWh would need 6 MW
      const { store } = open(dir, clock);
      const [recovered] = store.recoverInterrupted({ importKwh, takenAtMs: clock.ms, pricePerKwh: 0.2 });
      assert.equal(recovered?.event.kwh, 0, `register ${importKwh} is not billed`);
    }
  });

  it('closes a session left open by a crash as interrupted, with its last saved reading, and queues its SUPPLY_END', () => {
    const dir = tempDir();
    const clock = new Clock();
    const crashed = open(dir, clock, { ledgerCheckpointMs: 60_000 }).store;
    crashed.append(started(clock));
    crashed.append(status(clock));
    for (let second = 1; second <= 90; second += 1) {
      clock.advance(1000);
      crashed.append(consumo(clock, second / 1000));
      crashed.acknowledge(crashed.peek(100));
      crashed.maintain();
    }
    // Crash: the checkpoint at 60 s is on disk, the 30 readings after it are not.
    clock.advance(120_000);
    const { store, log } = open(dir, clock);
    const interrupted = store.recoverInterrupted();
    assert.equal(interrupted.length, 1);
    const [{ session, event }] = interrupted as [(typeof interrupted)[number]];
    assert.equal(session.id, 'S1');
    assert.equal(session.endReason, 'interrupted');
    assert.equal(session.kwh, 0.06, 'the reading saved at the 60 s checkpoint');
    assert.equal(event.type, 'SUPPLY_END');
    assert.equal(event.reason, 'interrupted');
    assert.equal(event.kwh, 0.06);
    assert.equal(event.meter_import_kwh, 1000.06);
    assert.equal(event.ended_at, new Date(T0 + 60_000).toISOString(), 'ended at the last reading we know of');
    assert.ok(event.seq > 92);
    assert.deepEqual(store.peek(10).map((entry) => entry.id), [event.id], 'its SUPPLY_END waits for Kafka');
    assert.deepEqual(store.recoverInterrupted(), [], 'a second call finds nothing open');
    const [ledger] = store.listSessions(1);
    assert.equal(ledger?.endReason, 'interrupted');
    assert.equal(ledger?.endedAt, event.ended_at);
    assert.equal(log.lines.length, 0);
    store.close();
  });

  it('with Kafka off, keeps the ledger but queues nothing', () => {
    const dir = tempDir();
    const clock = new Clock();
    const { store } = open(dir, clock, { outbox: false });
    store.append(started(clock));
    for (let i = 1; i <= 100; i += 1) {
      clock.advance(1000);
      store.append(consumo(clock, i / 1000));
      store.maintain();
    }
    assert.deepEqual(store.peek(10), []);
    assert.equal(store.stats().depth, 0);
    assert.deepEqual(onDisk(dir), []);
    assert.equal(store.listSessions(1)[0]?.kwh, 0.06, 'the ledger still follows the session');
    store.close();
  });
});
