// The outbox's size bound (worker thread): past maxBytes the oldest CONSUMO rows not yet acknowledged
// are deleted in one batch, down to EVICT_TO_SHARE of the bound; a session event never is.
import type Database from 'better-sqlite3';
import { usedBytes, type Statements } from './opening.js';

/** Eviction frees down to this share of maxBytes, so it runs rarely and in batches. */
const EVICT_TO_SHARE = 0.9;
/** SQLite's per-row cost beyond the payload (header, key, id, type, numbers): close enough to plan eviction. */
const ROW_OVERHEAD_BYTES = 48;

export interface Eviction {
  evicted: number;
  /** The highest seq deleted (0 when none). */
  evictedThrough: number;
  /** Over the bound with no CONSUMO left to delete. */
  fullOfSessionEvents: boolean;
}

interface OutboxDisk {
  db: Database.Database;
  statements: Statements;
  maxBytes: number;
  ackedThrough: number;
  depth: number;
  bytes: number;
}

export function evictOverBound(d: OutboxDisk): Eviction {
  const excess = usedBytes(d.db) - d.maxBytes;
  if (excess <= 0) return { evicted: 0, evictedThrough: 0, fullOfSessionEvents: false };
  const toFree = excess + d.maxBytes * (1 - EVICT_TO_SHARE);
  let freed = 0;
  let lastSeq: number | undefined;
  for (const victim of d.statements.oldestConsumo.iterate(d.ackedThrough) as IterableIterator<{ seq: number; bytes: number }>) {
    freed += victim.bytes + ROW_OVERHEAD_BYTES;
    lastSeq = victim.seq;
    if (freed >= toFree) break;
  }
  if (lastSeq === undefined) return { evicted: 0, evictedThrough: 0, fullOfSessionEvents: true };
  const evictThrough = lastSeq;
  let totals = { n: 0, b: 0 };
  d.db.transaction(() => {
    totals = d.statements.consumoTotalsThrough.get(d.ackedThrough, evictThrough) as { n: number; b: number };
    d.statements.deleteConsumoThrough.run(d.ackedThrough, evictThrough);
  })();
  d.depth -= totals.n;
  d.bytes -= totals.b;
  return { evicted: totals.n, evictedThrough: evictThrough, fullOfSessionEvents: false };
}
