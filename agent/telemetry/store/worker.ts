// The store's worker thread: the only code that touches the SQLite database. Every call here may
// wait on fsync (a worn SD card: seconds), which is why it is not on the main thread's event loop.
// Requests that queued up while a commit waited are run together: the deletes Kafka's acknowledgements
// allow in one transaction, the commits in another (one fsync each), then the reads, in order; each
// request gets its `done` reply.
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { applyToLedger, checkpointReading, openSessions, toLedgerSession, type SessionRow } from './ledger.js';
import { isSqliteError, openDatabase, usedBytes, type Statements } from './opening.js';
import { evictOverBound, type Eviction } from './outbox.js';
import type { StoreReply, StoreRequest, WorkerInit } from './protocol.js';
import type { DiskFigures, OutboxEntry } from './types.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const reply = (message: StoreReply) => port.postMessage(message);

interface Disk {
  db: Database.Database;
  statements: Statements;
  maxBytes: number;
  ackedThrough: number;
  deletedThrough: number;
  depth: number;
  bytes: number;
}

let disk: Disk | undefined;
try {
  const opened = openDatabase(init.stateDir, init.maxBytes, init.nowMs);
  disk = { db: opened.db, statements: opened.statements, maxBytes: init.maxBytes, ackedThrough: 0, deletedThrough: 0, depth: opened.state.disk.depth, bytes: opened.state.disk.bytes };
  reply({ type: 'opened', state: opened.state });
} catch (error) {
  reply({ type: 'open_failed', error: (error as Error).message });
}

let queue: StoreRequest[] = [];
let scheduled = false;
port.on('message', (request: StoreRequest) => {
  queue.push(request);
  if (scheduled) return;
  scheduled = true;
  setImmediate(runQueued);
});

function runQueued(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (!disk) {
    for (const request of batch) reply({ type: 'done', id: request.id, ok: false, code: 'STORE_NOT_OPEN', error: 'the store did not open', disk: emptyFigures, evicted: 0 });
    return;
  }
  // Deletes first, in their own transaction: when the disk is full they are what makes room, and a
  // commit that fails must not roll them back.
  const acks = batch.filter((request) => request.op === 'ack');
  const commits = batch.filter((request) => request.op === 'commit');
  if (acks.length > 0) runWrites(disk, acks);
  if (commits.length > 0) runWrites(disk, commits);
  for (const request of batch) {
    if (request.op === 'commit' || request.op === 'ack') continue;
    runRead(disk, request);
  }
}

const emptyFigures: DiskFigures = { depth: 0, bytes: 0, dbBytes: 0 };

function runWrites(d: Disk, writes: StoreRequest[]): void {
  let inserted = false;
  try {
    d.db.transaction(() => {
      for (const request of writes) {
        if (request.op === 'ack') {
          d.ackedThrough = Math.max(d.ackedThrough, request.through);
          deleteAcknowledged(d);
        } else if (request.op === 'commit') {
          for (const row of request.rows) {
            if (row.seq <= d.ackedThrough) continue; // Kafka has it already
            const changes = d.statements.insertOutbox.run(row.seq, row.id, row.type, row.value, row.bytes, row.createdMs).changes;
            d.depth += changes;
            d.bytes += changes * row.bytes;
            inserted ||= changes > 0;
          }
          for (const event of request.ledger) applyToLedger(d.statements, event);
          for (const [sessionId, reading] of request.readings) checkpointReading(d.statements, sessionId, reading);
          d.statements.raiseLastSeq.run({ seq: request.seqThrough });
        }
      }
      deleteAcknowledged(d);
    })();
  } catch (error) {
    if (!isSqliteError(error)) throw error;
    // The transaction rolled back: the counters were advanced inside it, so read them again.
    recount(d);
    for (const request of writes) reply({ type: 'done', id: request.id, ok: false, code: error.code, error: error.message, disk: figures(d), evicted: 0 });
    return;
  }
  let eviction: Eviction = { evicted: 0, evictedThrough: 0, fullOfSessionEvents: false };
  if (inserted) {
    try {
      eviction = evictOverBound(d);
    } catch (error) {
      if (!isSqliteError(error)) throw error;
      recount(d); // the rows stay; the next commit tries again
    }
  }
  writes.forEach((request, index) =>
    reply({
      type: 'done',
      id: request.id,
      ok: true,
      disk: figures(d),
      evicted: index === 0 ? eviction.evicted : 0,
      evictedThrough: eviction.evictedThrough || undefined,
      fullOfSessionEvents: eviction.fullOfSessionEvents || undefined,
    }),
  );
}

function runRead(d: Disk, request: StoreRequest): void {
  try {
    let result: unknown;
    switch (request.op) {
      case 'peek':
        result = peek(d, request.after, request.limit, request.maxBytes);
        break;
      case 'open_sessions':
        result = openSessions(d.statements);
        break;
      case 'sessions':
        result = (d.statements.listSessions.all(request.limit) as SessionRow[]).map(toLedgerSession);
        break;
      case 'close':
        d.db.transaction(() => {
          d.statements.raiseLastSeq.run({ seq: request.seqThrough });
          d.statements.setMeta.run('clean_stop', '1');
        })();
        d.db.close();
        disk = undefined;
        reply({ type: 'done', id: request.id, ok: true, disk: emptyFigures, evicted: 0 });
        return;
    }
    reply({ type: 'done', id: request.id, ok: true, result, disk: figures(d), evicted: 0 });
  } catch (error) {
    if (!isSqliteError(error)) throw error;
    reply({ type: 'done', id: request.id, ok: false, code: error.code, error: error.message, disk: figures(d), evicted: 0 });
  }
}

function deleteAcknowledged(d: Disk): void {
  if (d.deletedThrough >= d.ackedThrough) return;
  const totals = d.statements.totalsThrough.get(d.ackedThrough) as { n: number; b: number };
  if (totals.n > 0) d.statements.deleteThrough.run(d.ackedThrough);
  d.depth -= totals.n;
  d.bytes -= totals.b;
  d.deletedThrough = d.ackedThrough;
}

function recount(d: Disk): void {
  const totals = d.statements.outboxTotals.get() as { n: number; b: number };
  d.depth = totals.n;
  d.bytes = totals.b;
  d.deletedThrough = Math.min(d.deletedThrough, d.ackedThrough - 1);
}

function peek(d: Disk, after: number, limit: number, maxBytes: number): OutboxEntry[] {
  const rows = d.statements.peek.all(Math.max(after, d.ackedThrough), limit) as Array<{
    seq: number;
    id: string;
    type: OutboxEntry['type'];
    value: string;
    bytes: number;
    created_ms: number;
  }>;
  const batch: OutboxEntry[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (batch.length > 0 && bytes + row.bytes > maxBytes) break;
    batch.push({ seq: row.seq, id: row.id, type: row.type, value: row.value, bytes: row.bytes, createdMs: row.created_ms });
    bytes += row.bytes;
  }
  return batch;
}

function figures(d: Disk): DiskFigures {
  const oldest = d.statements.oldest.get(d.ackedThrough) as { created_ms: number } | undefined;
  return { depth: d.depth, bytes: d.bytes, dbBytes: usedBytes(d.db), oldestCreatedMs: oldest?.created_ms };
}
