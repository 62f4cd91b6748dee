// Opening the database (worker thread only: every call here is synchronous and may wait on fsync):
// schema, prepared statements, a database that is not one any more moved aside, and where seq goes on.
//
// seq is gapless across crashes: the next seq follows the highest one that was ever handed out and
// could have left the process, which is the highest of: the outbox rows, the `last_seq` committed with
// every transaction, and the seq mark file (written, without fsync, before a number is sent anywhere).
// A process death (kill -9, OOM, watchdog) keeps the mark (it is in the page cache); a power cut may
// lose its last seconds, so after a reboot the previous run did not stop cleanly from, seq jumps by
// POWER_CUT_SEQ_SKIP and says so (`seq_skipped`): a reused seq would be worse than a gap.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { readSeqMark, type MarkReading } from './seq-mark.js';
import { STORE_FILE, SEQ_MARK_FILE, type DiskFigures, type LedgerSession } from './types.js';
import { toLedgerSession, type SessionRow } from './ledger.js';

const SCHEMA_VERSION = 2;
/** The database may grow this far past maxBytes (session events are never evicted); then SQLITE_FULL. */
export const HARD_CAP_SHARE = 1.25;
/** More than any number of messages the kernel could hold unwritten before a power cut (≈ 30 s of them). */
export const POWER_CUT_SEQ_SKIP = 1000;

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

export function seqMarkPath(stateDir: string): string {
  return join(stateDir, SEQ_MARK_FILE);
}

export interface OpenedState {
  ledgerId: string;
  nextSeq: number;
  /** Set when seq jumped because the previous run ended in a power cut (or lost its mark). */
  skipped?: { from: number; to: number; reason: string };
  bootId: string;
  /** The newest CONSUMO reading numbered before the last stop or crash, from the seq mark. */
  markReading?: MarkReading;
  sessionCount: number;
  disk: DiskFigures;
  /** The newest seq on disk at open: rows up to it are not in the main thread's memory. */
  diskMaxSeq: number;
  movedAside?: { code: string; error: string; to: string };
}

export interface OpenedDatabase {
  db: Database.Database;
  statements: Statements;
  state: OpenedState;
}

/**
 * Opens (creating when missing) the store; throws STORE_OPEN_FAILED with the path and the cause.
 * A database that is not one any more (SQLITE_CORRUPT, SQLITE_NOTADB: an SD card after a bad power
 * cut) is moved aside, never deleted, and a fresh one is started so charging can go on.
 */
export function openDatabase(stateDir: string, maxBytes: number, nowMs: number): OpenedDatabase {
  const path = storePath(stateDir);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o750 });
    return openAt(stateDir, path, maxBytes);
  } catch (error) {
    let cause = error;
    const code = isSqliteError(error) ? error.code : '';
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      const aside = `${path}.corrupt-${new Date(nowMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
      for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
      try {
        const opened = openAt(stateDir, path, maxBytes);
        opened.state.movedAside = { code, error: (error as Error).message, to: aside };
        return opened;
      } catch (again) {
        cause = again;
      }
    }
    throw new Error(`STORE_OPEN_FAILED: cannot open the telemetry store ${path}: ${(cause as Error).message}`);
  }
}

function openAt(stateDir: string, path: string, maxBytes: number): OpenedDatabase {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // WAL + NORMAL may lose the last commits on a power cut
    db.pragma('busy_timeout = 200');
    db.pragma('journal_size_limit = 4194304');
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    db.pragma(`max_page_count = ${Math.ceil((maxBytes * HARD_CAP_SHARE) / pageSize)}`);
    const statements = prepare(db);
    return { db, statements, state: readState(db, statements, stateDir) };
  } catch (error) {
    db.close();
    throw error;
  }
}

function readState(db: Database.Database, statements: Statements, stateDir: string): OpenedState {
  const meta = (key: string) => statements.getMeta.get(key)?.value;
  const totals = statements.outboxTotals.get() as { n: number; b: number; max: number | null };
  const sessionCount = (statements.sessionCount.get() as { n: number }).n;
  const bootId = readBootId();
  let ledgerId = meta('ledger_id');
  const fresh = !ledgerId;
  if (!ledgerId) ledgerId = randomBytes(4).toString('hex');
  const mark = readSeqMark(seqMarkPath(stateDir));
  const markSeq = mark && mark.ledger === ledgerId ? mark.seq : 0;
  // seq_floor: the block reservation of schema 1, above every seq it handed out
  const legacyFloor = Number(meta('seq_floor') ?? 1) - 1;
  const durable = Math.max(totals.max ?? 0, Number(meta('last_seq') ?? 0), legacyFloor);
  let nextSeq = Math.max(durable, markSeq) + 1;
  let skipped: OpenedState['skipped'];
  const cleanStop = fresh || meta('clean_stop') === '1';
  // Same boot: the process died and the page cache, so the mark, survived. Another boot without a clean
  // stop: a power cut (or a kernel crash) may have lost the mark's last writes.
  if (!cleanStop && meta('boot_id') !== bootId) {
    skipped = { from: nextSeq, to: nextSeq + POWER_CUT_SEQ_SKIP, reason: 'reboot_without_clean_stop' };
    nextSeq += POWER_CUT_SEQ_SKIP;
  }
  db.transaction(() => {
    statements.setMeta.run('ledger_id', ledgerId);
    statements.setMeta.run('boot_id', bootId);
    statements.setMeta.run('last_seq', String(nextSeq - 1));
    statements.setMeta.run('clean_stop', '0');
  })();
  const oldest = statements.oldest.get(0) as { created_ms: number } | undefined;
  return {
    ledgerId,
    nextSeq,
    skipped,
    bootId,
    markReading: mark && mark.ledger === ledgerId ? mark.reading : undefined,
    sessionCount,
    disk: { depth: totals.n, bytes: totals.b, dbBytes: usedBytes(db), oldestCreatedMs: oldest?.created_ms },
    diskMaxSeq: totals.max ?? 0,
  };
}

/** Changes at every boot: tells a process death (the page cache, and so the seq mark, survived) from a reboot. */
function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function usedBytes(db: Database.Database): number {
  const pages = Number(db.pragma('page_count', { simple: true }));
  const free = Number(db.pragma('freelist_count', { simple: true }));
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  return (pages - free) * pageSize;
}

export function isSqliteError(error: unknown): error is InstanceType<typeof Database.SqliteError> {
  return error instanceof Database.SqliteError;
}

export function prepare(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    raiseLastSeq: db.prepare(
      "INSERT INTO meta (key, value) VALUES ('last_seq', @seq) ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), @seq)",
    ),
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
    lastConsumoOf: db.prepare(
      "SELECT value FROM outbox WHERE type = 'CONSUMO' AND json_extract(value, '$.session_id') = ? ORDER BY seq DESC LIMIT 1",
    ),
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

export type Statements = ReturnType<typeof prepare>;

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
