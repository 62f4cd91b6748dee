// The local store's shared vocabulary: what the main thread and the store's worker thread exchange,
// and what the pipeline, the controller and `charger-agent sessions` read.
import type { FaultCode, SessionEndReason, TelemetryType } from '../../charging/types.js';
import type { Logger } from '../../logging/logger.js';
import type { DeliveredEvent } from '../types.js';

export const STORE_FILE = 'charger-agent.db';
/** Beside the database: the highest seq handed out, written (no fsync) before a number leaves memory. */
export const SEQ_MARK_FILE = 'charger-agent.seq';

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
  /** Outbox entries held in memory at most (default 10 000); past it CONSUMO go, session events never. */
  memoryMaxEntries?: number;
  /** A worker request unanswered this long is a store fault (`store_stalled`); default 10 s. */
  stallAfterMs?: number;
  /** An uncommitted session event older than this makes /health degraded; default 10 s. */
  pendingMaxAgeMs?: number;
  /** After a failed commit, a failed open or a dead worker, the next try comes this much later; default 5 s. */
  retryAfterFailureMs?: number;
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

/** An open session's latest reading, as a CONSUMO carries it: what a ledger checkpoint saves. */
export interface SessionReading {
  kwh: number;
  importe: number;
  lastImportKwh?: number;
  startImportKwh?: number;
  readingAt: string;
}

/**
 * The first good meter reading after a restart. A crash leaves the relay line in its default,
 * open, state, so no energy flowed between the crash and this reading: its register is the exact
 * end of the interrupted supply, more exact than any reading kept before the crash.
 */
export interface FinalReading {
  importKwh: number;
  takenAtMs: number;
  pricePerKwh: number;
}

/** Which reading closed an interrupted session (the `closed_with` of `session_interrupted`). */
export type ClosedWith = 'first_reading_after_restart' | 'last_durable_consumo' | 'last_ledger_checkpoint' | 'start';

export interface InterruptedSession {
  session: LedgerSession;
  /** The SUPPLY_END (reason interrupted) now in the store. */
  event: DeliveredEvent;
  /** Resolves true once that SUPPLY_END and the ledger's end are committed (false: the store closed first). */
  durable: Promise<boolean>;
  closedWith: ClosedWith;
  /** Why the first reading after the restart was not used, when it was not. */
  rejected?: string;
  /** Where a `last_durable_consumo` came from: an outbox row, or the seq mark written before it was sent. */
  consumoSource?: 'outbox' | 'seq_mark';
}

/** What the worker reports about the database after every request: the main thread's view of the disk. */
export interface DiskFigures {
  /** Outbox rows not yet deleted, and their payload bytes. */
  depth: number;
  bytes: number;
  /** Bytes of database pages in use (what maxBytes bounds). */
  dbBytes: number;
  oldestCreatedMs?: number;
}

export type StoreState = 'opening' | 'ok' | 'failing' | 'stalled' | 'down' | 'closed';

export interface StoreStats {
  state: StoreState;
  /** Messages waiting for Kafka: on disk and in memory. */
  depth: number;
  oldestCreatedMs?: number;
  droppedConsumo: number;
  /** Payload bytes of the waiting messages. */
  outboxBytes: number;
  dbBytes: number;
  /** Outbox entries held in memory (waiting for a commit, or kept to send without reading the disk). */
  inMemory: number;
  /** Writes the worker has not confirmed yet: session events, and CONSUMO whose flush is due. */
  pending: number;
  oldestPendingMs?: number;
  writeFailures: number;
}
