// The local store: the session ledger and the outbox of telemetry Kafka has not acknowledged yet, in
// one SQLite database (WAL, synchronous=FULL) at <stateDir>/charger-agent.db.
//
// What reaches the disk, and when (SD cards wear out):
// - a session event (SESSION_STARTED, SUPPLY_END, AVERIADO, CP_STATUS) is committed with the ledger
//   update it implies before append() returns: a crash or a power cut after that loses none;
// - CONSUMO samples wait in memory and, while Kafka acknowledges them promptly, never touch the disk.
//   Once the oldest has waited consumoFlushMs unacknowledged, every waiting sample is committed in one
//   transaction (one commit per consumoFlushMs during an outage); the rest are committed at close;
// - an open session's last reading is saved in the ledger every ledgerCheckpointMs, with each CONSUMO
//   flush and at close, so a session cut short by a crash is closed with a recent reading;
// - seq numbers are reserved in blocks: a crash may leave a gap in seq, never a reused seq (and id).
// Bounded by maxBytes: past it the oldest CONSUMO rows are deleted, never a session event. A write that
// fails (SQLITE_FULL, SQLITE_IOERR, ENOSPC) is logged as store_error; what could not be written stays
// in memory (bounded) and is retried, and what was already stored stays stored.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultCode, SessionEndReason, TelemetryEvent, TelemetryType } from '../charging/types.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import { OutageLog } from '../logging/outage-log.js';
import type { DeliveredEvent } from './types.js';

export const STORE_FILE = 'charger-agent.db';

const SCHEMA_VERSION = 1;
/** seq numbers reserved per meta write: at 1 CONSUMO/s, one small commit every ~4 minutes. */
const SEQ_BLOCK = 256;
/** The database may grow this far past maxBytes (session events are never evicted); then SQLITE_FULL. */
const HARD_CAP_SHARE = 1.25;
/** Eviction frees down to this share of maxBytes, so it runs rarely and in batches. */
const EVICT_TO_SHARE = 0.9;
/** Outbox entries kept in memory while the disk refuses writes; past it the oldest CONSUMO go. */
const MEMORY_MAX_ENTRIES = 10_000;
const RETRY_AFTER_FAILURE_MS = 5_000;
const DROP_LOG_EVERY_MS = 60_000;

export interface StoreOptions {
  stateDir: string;
  cpId: string;
  maxBytes: number;
  consumoFlushMs: number;
  ledgerCheckpointMs: number;
  /**
   * False when Kafka is off: nothing is queued for delivery (there is no one to deliver to, and an
   * outbox that only grows would end up evicting); session events still go to the ledger, which is
   * then the record. Rows left from a run with Kafka on are kept for when it comes back.
   */
  outbox: boolean;
  log: Logger;
  now?: () => number;
}

/** One message as stored: `value` is the JSON of the DeliveredEvent, sent to Kafka byte for byte. */
export interface OutboxEntry {
  seq: number;
  id: string;
  type: TelemetryType;
  value: string;
  bytes: number;
  createdMs: number;
}

export interface LedgerSession {
  id: string;
  driverId: string;
  authorizedAt: string;
  startedAt?: string;
  endedAt?: string;
  /** Meter import register when the supply started, and the last one known (at the end, when closed). */
  startImportKwh?: number;
  lastImportKwh?: number;
  lastReadingAt?: string;
  kwh: number;
  importe: number;
  endReason?: SessionEndReason;
  fault?: FaultCode;
}

export interface InterruptedSession {
  session: LedgerSession;
  /** The SUPPLY_END (reason interrupted) now in the outbox. */
  event: DeliveredEvent;
}

/**
 * The first good meter reading after a restart. A crash leaves the relay line in its default,
 * open, state, so no energy flowed between the crash and this reading: its register is the exact
 * end of the interrupted supply, more exact than the last reading the ledger kept.
 */
export interface FinalReading {
  importKwh: number;
  takenAtMs: number;
  pricePerKwh: number;
}

/** No vehicle charger draws more: a register that moved further while we were down is not ours to bill. */
const MAX_PLAUSIBLE_POWER_KW = 50;

export interface StoreStats {
  /** Messages waiting for Kafka: on disk and in memory. */
  depth: number;
  oldestCreatedMs?: number;
  droppedConsumo: number;
  /** Payload bytes of the waiting messages. */
  outboxBytes: number;
  /** Bytes of database pages in use (what maxBytes bounds). */
  dbBytes: number;
  /** Entries held in memory because the disk refused them (or CONSUMO waiting for their flush). */
  inMemory: number;
  writeFailures: number;
}

export interface TelemetryStore {
  readonly path: string;
  /** Assigns seq and id; session events are committed before it returns (unless the disk refuses); CONSUMO only wait in memory. */
  append(event: TelemetryEvent): DeliveredEvent;
  /** The oldest waiting messages in seq order, at most `limit` and about `maxBytes`. */
  peek(limit: number, maxBytes?: number): OutboxEntry[];
  /** Kafka acknowledged these (a prefix of peek()): they are deleted and never sent again. */
  acknowledge(entries: readonly OutboxEntry[]): void;
  /** Periodic work (call about once a second): CONSUMO flush, ledger checkpoint, seq reservation, retries after a failed write. */
  maintain(): void;
  /** Closes the sessions a crash left open; with the first good reading after the restart when there is one. */
  recoverInterrupted(final?: FinalReading): InterruptedSession[];
  sessionCount(): number;
  listSessions(limit: number): LedgerSession[];
  stats(): StoreStats;
  /** Commits what waits in memory, then closes. Safe to call twice. */
  close(): void;
}

interface MemoryEntry extends OutboxEntry {
  /** A session event whose write failed: retried as soon as possible. CONSUMO wait for their flush. */
  urgent: boolean;
}

interface SessionReading {
  kwh: number;
  importe: number;
  lastImportKwh?: number;
  startImportKwh?: number;
  readingAt: string;
}

interface SessionRow {
  id: string;
  driver_id: string;
  authorized_at: string;
  started_at: string | null;
  ended_at: string | null;
  start_import_kwh: number | null;
  last_import_kwh: number | null;
  last_reading_at: string | null;
  kwh: number;
  importe: number;
  end_reason: string | null;
  fault: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  driver_id TEXT NOT NULL,
  authorized_at TEXT NOT NULL,
  started_at TEXT,
  ended_at TEXT,
  start_import_kwh REAL,
  last_import_kwh REAL,
  last_reading_at TEXT,
  kwh REAL NOT NULL DEFAULT 0,
  importe REAL NOT NULL DEFAULT 0,
  end_reason TEXT,
  fault TEXT
);
`;

export function storePath(stateDir: string): string {
  return join(stateDir, STORE_FILE);
}

interface InitialState {
  ledgerId: string;
  diskDepth: number;
  diskBytes: number;
  nextSeq: number;
}

/**
 * Opens (creating when missing) the store; throws STORE_OPEN_FAILED with the path and the cause.
 * A database that is not one any more (SQLITE_CORRUPT, SQLITE_NOTADB: an SD card after a bad power
 * cut) is moved aside, never deleted, and a fresh one is started so charging can go on.
 */
export function openTelemetryStore(options: StoreOptions): TelemetryStore {
  const path = storePath(options.stateDir);
  try {
    mkdirSync(options.stateDir, { recursive: true, mode: 0o750 });
    return openAt(path, options);
  } catch (error) {
    const code = isSqliteError(error) ? error.code : '';
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      const aside = `${path}.corrupt-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
      for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
      options.log.err(LOG_EVENTS.storeError, { op: 'open', code, error: (error as Error).message, path, moved_to: aside });
      try {
        return openAt(path, options);
      } catch (again) {
        error = again;
      }
    }
    throw new Error(`STORE_OPEN_FAILED: cannot open the telemetry store ${path}: ${(error as Error).message}`);
  }
}

function openAt(path: string, options: StoreOptions): TelemetryStore {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // WAL + NORMAL may lose the last commits on a power cut
    db.pragma('busy_timeout = 200');
    db.pragma('journal_size_limit = 4194304');
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    db.pragma(`max_page_count = ${Math.ceil((options.maxBytes * HARD_CAP_SHARE) / pageSize)}`);
    const statements = prepare(db);
    return new SqliteTelemetryStore(db, path, statements, readInitialState(statements), options);
  } catch (error) {
    db.close();
    throw error;
  }
}

function readInitialState(statements: Statements): InitialState {
  let ledgerId = statements.getMeta.get('ledger_id')?.value;
  if (!ledgerId) {
    ledgerId = randomBytes(4).toString('hex');
    statements.setMeta.run('ledger_id', ledgerId);
  }
  const disk = statements.outboxTotals.get() as { n: number; b: number; max: number | null };
  const floor = Number(statements.getMeta.get('seq_floor')?.value ?? 1);
  return { ledgerId, diskDepth: disk.n, diskBytes: disk.b, nextSeq: Math.max(floor, (disk.max ?? 0) + 1) };
}

function isSqliteError(error: unknown): error is InstanceType<typeof Database.SqliteError> {
  return error instanceof Database.SqliteError;
}

const isSessionEvent = (type: TelemetryType) => type !== 'CONSUMO';

class SqliteTelemetryStore implements TelemetryStore {
  private readonly now: () => number;
  private readonly storeOutage: OutageLog;
  private readonly ledgerId: string;
  private nextSeq: number;
  private seqFloor: number;
  private memory: MemoryEntry[] = [];
  private ledgerPending: TelemetryEvent[] = [];
  private readings = new Map<string, SessionReading>();
  private lastCheckpointMs: number;
  private failing = false;
  private nextRetryMs = 0;
  private writeFailures = 0;
  private ackedThrough = 0;
  private deletedThrough = 0;
  private diskDepth: number;
  private diskBytes: number;
  private droppedConsumo = 0;
  private dropsNotLogged = 0;
  private lastDropLogMs = -Infinity;
  private lastDropReason = 'store_full';
  private lastFullWarningMs = -Infinity;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly statements: Statements,
    initial: InitialState,
    private readonly options: StoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.storeOutage = new OutageLog(options.log, {
      events: { down: LOG_EVENTS.storeError, still: LOG_EVENTS.storeError, up: 'store_recovered' },
    });
    this.ledgerId = initial.ledgerId;
    this.diskDepth = initial.diskDepth;
    this.diskBytes = initial.diskBytes;
    this.nextSeq = initial.nextSeq;
    this.seqFloor = initial.nextSeq; // reserved at the first append
    this.lastCheckpointMs = this.now();
  }

  append(event: TelemetryEvent): DeliveredEvent {
    if (this.closed) throw new Error('STORE_CLOSED: the telemetry store is closed');
    if (this.nextSeq >= this.seqFloor) this.reserveSeqs();
    const seq = this.nextSeq++;
    const delivered: DeliveredEvent = { ...event, seq, id: `${event.cp_id}-${this.ledgerId}-${seq}` };
    const value = JSON.stringify(delivered);
    const entry: MemoryEntry = {
      seq,
      id: delivered.id,
      type: event.type,
      value,
      bytes: Buffer.byteLength(value),
      createdMs: this.now(),
      urgent: isSessionEvent(event.type),
    };
    if (event.type === 'CONSUMO') this.noteReading(event);
    else this.ledgerPending.push(event);
    if (event.type === 'SUPPLY_END' && event.session_id) this.readings.delete(event.session_id); // it carries the totals
    if (this.options.outbox) this.keepInMemory(entry);
    // A CONSUMO costs no disk I/O here: its flush and the ledger checkpoint happen in maintain().
    if (entry.urgent) this.commit(false);
    return delivered;
  }

  peek(limit: number, maxBytes = 1024 * 1024): OutboxEntry[] {
    if (this.closed) return [];
    const fromDisk = this.readDisk(limit);
    const merged = [...fromDisk, ...this.memory.filter((entry) => entry.seq > this.ackedThrough)].sort((a, b) => a.seq - b.seq);
    const batch: OutboxEntry[] = [];
    let bytes = 0;
    for (const { urgent: _urgent, ...entry } of merged as MemoryEntry[]) {
      if (batch.length >= limit || (batch.length > 0 && bytes + entry.bytes > maxBytes)) break;
      batch.push(entry);
      bytes += entry.bytes;
    }
    return batch;
  }

  acknowledge(entries: readonly OutboxEntry[]): void {
    if (this.closed || entries.length === 0) return;
    const lastSeq = Math.max(...entries.map((entry) => entry.seq));
    this.memory = this.memory.filter((entry) => entry.seq > lastSeq);
    this.ackedThrough = Math.max(this.ackedThrough, lastSeq);
    this.deleteAcknowledged();
  }

  maintain(): void {
    if (this.closed) return;
    const nowMs = this.now();
    if (this.deletedThrough < this.ackedThrough) this.deleteAcknowledged();
    if (this.dropsNotLogged > 0 && nowMs - this.lastDropLogMs >= DROP_LOG_EVERY_MS) this.noteDropped(0, this.lastDropReason);
    if (this.seqFloor - this.nextSeq < SEQ_BLOCK / 4) this.reserveSeqs(); // ahead of time, so append() rarely writes for it
    const oldestWaiting = this.memory.find((entry) => !entry.urgent);
    const consumoDue = oldestWaiting !== undefined && nowMs - oldestWaiting.createdMs >= this.options.consumoFlushMs;
    if (this.failing) {
      if (nowMs >= this.nextRetryMs) this.commit(consumoDue);
    } else if (consumoDue) {
      this.commit(true);
    } else if (this.readings.size > 0 && nowMs - this.lastCheckpointMs >= this.options.ledgerCheckpointMs) {
      this.commit(false);
    }
  }

  recoverInterrupted(final?: FinalReading): InterruptedSession[] {
    const open = (this.statements.openSessions.all() as SessionRow[]).map(toLedgerSession);
    return open.map((session) => {
      this.readings.delete(session.id);
      const totals = finalTotals(session, final) ?? { kwh: session.kwh, importe: session.importe, meterKwh: session.lastImportKwh };
      const event: TelemetryEvent = {
        type: 'SUPPLY_END',
        cp_id: this.options.cpId,
        ts: new Date(this.now()).toISOString(),
        user_id: session.driverId,
        session_id: session.id,
        kwh: totals.kwh,
        importe: totals.importe,
        reason: 'interrupted',
        meter_import_kwh: totals.meterKwh,
        started_at: session.startedAt,
        // The supply stopped when the process died: the last reading is the best bound we have.
        ended_at: session.lastReadingAt ?? session.startedAt ?? session.authorizedAt,
      };
      const delivered = this.append(event);
      const closed = { ...session, kwh: totals.kwh, importe: totals.importe, lastImportKwh: totals.meterKwh };
      return { session: { ...closed, endedAt: event.ended_at, endReason: 'interrupted' as const }, event: delivered };
    });
  }


  sessionCount(): number {
    const stored = (this.statements.sessionCount.get() as { n: number }).n;
    return stored + this.ledgerPending.filter((event) => event.type === 'SESSION_STARTED').length;
  }

  listSessions(limit: number): LedgerSession[] {
    return (this.statements.listSessions.all(limit) as SessionRow[]).map(toLedgerSession);
  }

  stats(): StoreStats {
    const pendingDelete =
      this.deletedThrough < this.ackedThrough && !this.closed
        ? (this.statements.totalsThrough.get(this.ackedThrough) as { n: number; b: number })
        : { n: 0, b: 0 };
    const oldestDisk = this.closed ? undefined : (this.statements.oldest.get(this.ackedThrough) as { created_ms: number } | undefined);
    const oldestMemory = this.memory[0]?.createdMs;
    const candidates = [oldestDisk?.created_ms, oldestMemory].filter((ms): ms is number => ms !== undefined);
    return {
      depth: this.diskDepth - pendingDelete.n + this.memory.length,
      oldestCreatedMs: candidates.length > 0 ? Math.min(...candidates) : undefined,
      droppedConsumo: this.droppedConsumo,
      outboxBytes: this.diskBytes - pendingDelete.b + this.memory.reduce((sum, entry) => sum + entry.bytes, 0),
      dbBytes: this.closed ? 0 : this.usedBytes(),
      inMemory: this.memory.length,
      writeFailures: this.writeFailures,
    };
  }

  close(): void {
    if (this.closed) return;
    if (this.deletedThrough < this.ackedThrough) this.deleteAcknowledged();
    const committed = this.commit(true);
    if (committed) this.tryWrite('seq_floor', () => this.statements.setMeta.run('seq_floor', String(this.nextSeq)));
    else {
      this.options.log.err(LOG_EVENTS.storeError, {
        op: 'close',
        lost_outbox: this.memory.length,
        lost_ledger_updates: this.ledgerPending.length,
        path: this.path,
      });
    }
    this.closed = true;
    this.db.close();
  }

  // ---------------------------------------------------------------- writing

  /** One transaction: session events (and, when `everything`, CONSUMO) from memory, ledger updates, readings. */
  private commit(everything: boolean): boolean {
    const entries = this.memory.filter((entry) => everything || entry.urgent);
    const ledger = this.ledgerPending;
    const readings = [...this.readings];
    const ok = this.tryWrite('commit', () =>
      this.db.transaction(() => {
        for (const entry of entries) this.statements.insertOutbox.run(entry.seq, entry.id, entry.type, entry.value, entry.bytes, entry.createdMs);
        for (const event of ledger) applyToLedger(this.statements, event);
        for (const [sessionId, reading] of readings) checkpointReading(this.statements, sessionId, reading);
      })(),
    );
    if (!ok) return false;
    const written = new Set(entries.map((entry) => entry.seq));
    this.memory = this.memory.filter((entry) => !written.has(entry.seq));
    this.ledgerPending = this.ledgerPending.slice(ledger.length);
    this.readings.clear(); // saved; the next CONSUMO brings the next reading
    this.lastCheckpointMs = this.now();
    this.diskDepth += entries.length;
    this.diskBytes += entries.reduce((sum, entry) => sum + entry.bytes, 0);
    if (entries.length > 0) this.enforceMaxBytes();
    return true;
  }

  /** Runs one write; a failure is logged (once per outage) and leaves `failing` set until a commit succeeds. */
  private tryWrite(op: string, write: () => unknown): boolean {
    try {
      write();
    } catch (error) {
      if (!isSqliteError(error)) throw error;
      this.writeFailures += 1;
      this.failing = true;
      this.nextRetryMs = this.now() + RETRY_AFTER_FAILURE_MS;
      this.storeOutage.failure(this.now(), {
        op,
        code: error.code,
        error: error.message,
        path: this.path,
        in_memory: this.memory.length,
        ledger_pending: this.ledgerPending.length,
      });
      return false;
    }
    if (this.failing && op === 'commit') {
      // Only a commit proves that what was held in memory is now stored.
      this.failing = false;
      this.storeOutage.success(this.now(), { path: this.path });
    }
    return true;
  }

  private reserveSeqs(): void {
    const floor = this.nextSeq + SEQ_BLOCK;
    // If even this small write fails, carry on: a seq is then reused only if we also crash before the
    // disk recovers, and only for events that were never stored.
    if (this.tryWrite('seq_reserve', () => this.statements.setMeta.run('seq_floor', String(floor)))) this.seqFloor = floor;
    else this.seqFloor = this.nextSeq + 1;
  }

  private deleteAcknowledged(): void {
    const through = this.ackedThrough;
    let totals = { n: 0, b: 0 };
    const ok = this.tryWrite('acknowledge', () =>
      this.db.transaction(() => {
        totals = this.statements.totalsThrough.get(through) as { n: number; b: number };
        if (totals.n > 0) this.statements.deleteThrough.run(through);
      })(),
    );
    if (!ok) return;
    this.deletedThrough = through;
    this.diskDepth -= totals.n;
    this.diskBytes -= totals.b;
  }

  private enforceMaxBytes(): void {
    const excess = this.usedBytes() - this.options.maxBytes;
    if (excess <= 0) return;
    const toFree = excess + this.options.maxBytes * (1 - EVICT_TO_SHARE);
    let freed = 0;
    let lastSeq: number | undefined;
    for (const victim of this.statements.oldestConsumo.iterate(this.ackedThrough) as IterableIterator<{ seq: number; bytes: number }>) {
      freed += victim.bytes + ROW_OVERHEAD_BYTES;
      lastSeq = victim.seq;
      if (freed >= toFree) break;
    }
    if (lastSeq === undefined) {
      if (this.now() - this.lastFullWarningMs < DROP_LOG_EVERY_MS) return;
      this.lastFullWarningMs = this.now();
      this.options.log.warning(LOG_EVENTS.outboxBacklog, {
        reason: 'store_full_of_session_events',
        db_bytes: this.usedBytes(),
        max_bytes: this.options.maxBytes,
      });
      return;
    }
    const evictThrough = lastSeq;
    let totals = { n: 0, b: 0 };
    const ok = this.tryWrite('evict', () =>
      this.db.transaction(() => {
        totals = this.statements.consumoTotalsThrough.get(this.ackedThrough, evictThrough) as { n: number; b: number };
        this.statements.deleteConsumoThrough.run(this.ackedThrough, evictThrough);
      })(),
    );
    if (!ok) return;
    this.diskDepth -= totals.n;
    this.diskBytes -= totals.b;
    this.noteDropped(totals.n, 'store_full');
  }

  private keepInMemory(entry: MemoryEntry): void {
    this.memory.push(entry);
    if (this.memory.length <= MEMORY_MAX_ENTRIES) return;
    const victim = this.memory.findIndex((candidate) => !candidate.urgent);
    if (victim < 0) return; // only session events: they are never dropped
    this.memory.splice(victim, 1);
    this.noteDropped(1, 'memory_full');
  }

  private noteDropped(count: number, reason: string): void {
    this.droppedConsumo += count;
    this.dropsNotLogged += count;
    this.lastDropReason = reason;
    const nowMs = this.now();
    if (this.dropsNotLogged === 0 || nowMs - this.lastDropLogMs < DROP_LOG_EVERY_MS) return;
    this.options.log.warning(LOG_EVENTS.outboxDropped, {
      type: 'CONSUMO',
      count: this.dropsNotLogged,
      total: this.droppedConsumo,
      reason,
      max_bytes: this.options.maxBytes,
    });
    this.dropsNotLogged = 0;
    this.lastDropLogMs = nowMs;
  }

  private noteReading(event: TelemetryEvent): void {
    if (!event.session_id) return;
    const previous = this.readings.get(event.session_id);
    const kwh = event.kwh ?? 0;
    const meter = event.meter_import_kwh;
    this.readings.set(event.session_id, {
      kwh,
      importe: event.importe ?? 0,
      lastImportKwh: meter,
      startImportKwh: previous?.startImportKwh ?? (meter === undefined ? undefined : round3(meter - kwh)),
      readingAt: event.ts,
    });
  }

  // ---------------------------------------------------------------- reading

  private readDisk(limit: number): OutboxEntry[] {
    const rows = this.statements.peek.all(this.ackedThrough, limit) as Array<{
      seq: number;
      id: string;
      type: TelemetryType;
      value: string;
      bytes: number;
      created_ms: number;
    }>;
    return rows.map((row) => ({ seq: row.seq, id: row.id, type: row.type, value: row.value, bytes: row.bytes, createdMs: row.created_ms }));
  }

  private usedBytes(): number {
    const pages = Number(this.db.pragma('page_count', { simple: true }));
    const free = Number(this.db.pragma('freelist_count', { simple: true }));
    const pageSize = Number(this.db.pragma('page_size', { simple: true }));
    return (pages - free) * pageSize;
  }
}

/** SQLite's per-row cost beyond the payload (header, key, id, type, numbers): close enough to plan eviction. */
const ROW_OVERHEAD_BYTES = 48;

function prepare(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    insertOutbox: db.prepare('INSERT OR IGNORE INTO outbox (seq, id, type, value, bytes, created_ms) VALUES (?, ?, ?, ?, ?, ?)'),
    peek: db.prepare('SELECT seq, id, type, value, bytes, created_ms FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
    oldest: db.prepare('SELECT created_ms FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1'),
    outboxTotals: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b, MAX(seq) AS max FROM outbox'),
    totalsThrough: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox WHERE seq <= ?'),
    deleteThrough: db.prepare('DELETE FROM outbox WHERE seq <= ?'),
    oldestConsumo: db.prepare("SELECT seq, bytes FROM outbox WHERE seq > ? AND type = 'CONSUMO' ORDER BY seq"),
    consumoTotalsThrough: db.prepare(
      "SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox WHERE seq > ? AND seq <= ? AND type = 'CONSUMO'",
    ),
    deleteConsumoThrough: db.prepare("DELETE FROM outbox WHERE seq > ? AND seq <= ? AND type = 'CONSUMO'"),
    sessionStarted: db.prepare(
      'INSERT OR IGNORE INTO sessions (id, driver_id, authorized_at, kwh, importe) VALUES (@id, @driver, @ts, 0, 0)',
    ),
    chargingStarted: db.prepare(`UPDATE sessions SET started_at = @ts, start_import_kwh = COALESCE(start_import_kwh, @start)
      WHERE ended_at IS NULL AND started_at IS NULL AND (@id IS NULL OR id = @id)`),
    fault: db.prepare('UPDATE sessions SET fault = @fault, kwh = @kwh, importe = @importe WHERE id = @id'),
    supplyEnd: db.prepare(`UPDATE sessions SET
        ended_at = @ended, end_reason = @reason, kwh = @kwh, importe = @importe,
        started_at = COALESCE(@started, started_at),
        last_import_kwh = COALESCE(@meter, last_import_kwh),
        start_import_kwh = COALESCE(start_import_kwh, @start)
      WHERE id = @id`),
    checkpoint: db.prepare(`UPDATE sessions SET
        kwh = @kwh, importe = @importe, last_import_kwh = @meter, last_reading_at = @at,
        start_import_kwh = COALESCE(start_import_kwh, @start)
      WHERE id = @id AND ended_at IS NULL`),
    openSessions: db.prepare('SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY rowid'),
    sessionCount: db.prepare('SELECT COUNT(*) AS n FROM sessions'),
    listSessions: db.prepare('SELECT * FROM sessions ORDER BY rowid DESC LIMIT ?'),
  };
}

type Statements = ReturnType<typeof prepare>;

function applyToLedger(statements: Statements, event: TelemetryEvent): void {
  const id = event.session_id ?? null;
  switch (event.type) {
    case 'SESSION_STARTED':
      if (id) statements.sessionStarted.run({ id, driver: event.user_id ?? '', ts: event.ts });
      return;
    case 'CP_STATUS':
      if (event.state === 'Charging') statements.chargingStarted.run({ ts: event.ts, id, start: event.meter_import_kwh ?? null });
      return;
    case 'AVERIADO':
      if (id) statements.fault.run({ id, fault: event.fault ?? null, kwh: event.kwh ?? 0, importe: event.importe ?? 0 });
      return;
    case 'SUPPLY_END': {
      if (!id) return;
      const meter = event.meter_import_kwh ?? null;
      statements.supplyEnd.run({
        id,
        ended: event.ended_at ?? event.ts,
        reason: event.reason ?? null,
        kwh: event.kwh ?? 0,
        importe: event.importe ?? 0,
        started: event.started_at ?? null,
        meter,
        start: meter === null ? null : round3(meter - (event.kwh ?? 0)),
      });
      return;
    }
    case 'CONSUMO':
      return;
  }
}

function checkpointReading(statements: Statements, sessionId: string, reading: SessionReading): void {
  statements.checkpoint.run({
    id: sessionId,
    kwh: reading.kwh,
    importe: reading.importe,
    meter: reading.lastImportKwh ?? null,
    at: reading.readingAt,
    start: reading.startImportKwh ?? null,
  });
}

function toLedgerSession(row: SessionRow): LedgerSession {
  return {
    id: row.id,
    driverId: row.driver_id,
    authorizedAt: row.authorized_at,
    startedAt: row.started_at ?? undefined,
    endedAt: row.ended_at ?? undefined,
    startImportKwh: row.start_import_kwh ?? undefined,
    lastImportKwh: row.last_import_kwh ?? undefined,
    lastReadingAt: row.last_reading_at ?? undefined,
    kwh: row.kwh,
    importe: row.importe,
    endReason: (row.end_reason as SessionEndReason | null) ?? undefined,
    fault: (row.fault as FaultCode | null) ?? undefined,
  };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** The ledger, read-only, for `charger-agent sessions` (works while the daemon runs: WAL readers never block it). */
export function readLedger(stateDir: string, limit: number): LedgerSession[] | undefined {
  const path = storePath(stateDir);
  if (!existsSync(path)) return undefined;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions'").get();
    if (!hasTable) return [];
    return (db.prepare('SELECT * FROM sessions ORDER BY rowid DESC LIMIT ?').all(limit) as SessionRow[]).map(toLedgerSession);
  } finally {
    db.close();
  }
}

/** The totals of an interrupted session from the first reading after the restart, when plausible. */
function finalTotals(session: LedgerSession, final: FinalReading | undefined): { kwh: number; importe: number; meterKwh: number } | undefined {
  if (!final || session.startImportKwh === undefined || session.startedAt === undefined) return undefined;
  const lastKwh = session.lastImportKwh ?? session.startImportKwh;
  const sinceMs = final.takenAtMs - Date.parse(session.lastReadingAt ?? session.startedAt);
  const movedKwh = final.importKwh - lastKwh;
  if (!(movedKwh >= 0) || movedKwh > (MAX_PLAUSIBLE_POWER_KW * Math.max(0, sinceMs)) / 3_600_000) return undefined;
  const kwh = round3(final.importKwh - session.startImportKwh);
  return { kwh, importe: Math.round(kwh * final.pricePerKwh * 10_000) / 10_000, meterKwh: final.importKwh };
}
