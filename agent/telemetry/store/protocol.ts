// Messages between the main thread (client.ts, worker-host.ts) and the store's worker thread (worker.ts).
// Every request carries an id; the worker answers each with a `done` carrying the same id, in order.
import type { TelemetryEvent } from '../../charging/types.js';
import type { OpenedState } from './opening.js';
import type { OpenSession } from './ledger.js';
import type { DiskFigures, LedgerSession, OutboxEntry, SessionReading } from './types.js';

export interface WorkerInit {
  stateDir: string;
  maxBytes: number;
  nowMs: number;
}

export type StoreRequest =
  /** One transaction: outbox rows, the session events' ledger updates, reading checkpoints, and seq. */
  | { op: 'commit'; id: number; rows: OutboxEntry[]; ledger: TelemetryEvent[]; readings: Array<[string, SessionReading]>; seqThrough: number }
  /** Kafka acknowledged everything up to `through`: delete those rows (and never insert them). */
  | { op: 'ack'; id: number; through: number }
  | { op: 'peek'; id: number; after: number; limit: number; maxBytes: number }
  | { op: 'open_sessions'; id: number }
  | { op: 'sessions'; id: number; limit: number }
  /** Marks a clean stop (with the last seq handed out) and closes the database. */
  | { op: 'close'; id: number; seqThrough: number };

export type RequestOp = StoreRequest['op'];

export interface RequestResults {
  commit: undefined;
  ack: undefined;
  peek: OutboxEntry[];
  open_sessions: OpenSession[];
  sessions: LedgerSession[];
  close: undefined;
}

export type StoreReply =
  | { type: 'opened'; state: OpenedState }
  | { type: 'open_failed'; error: string }
  | {
      type: 'done';
      id: number;
      ok: boolean;
      result?: unknown;
      /** SQLite's code when not ok (SQLITE_FULL, SQLITE_IOERR…). */
      code?: string;
      error?: string;
      disk: DiskFigures;
      /** CONSUMO rows deleted to stay within maxBytes by this request. */
      evicted: number;
      /** The highest seq the eviction deleted: CONSUMO copies in memory up to it are dropped too. */
      evictedThrough?: number;
      /** Over maxBytes with only session events left to delete (none is ever deleted). */
      fullOfSessionEvents?: boolean;
    };
