// The store's figures, kept in memory on the main thread for /health, /metrics and INFO (never a
// database read): the disk as the worker last reported it, plus what memory holds; and the
// rate-limited lines about dropped CONSUMO.
import { LOG_EVENTS } from '../../logging/events.js';
import type { Logger } from '../../logging/logger.js';
import type { Entry } from './memory.js';
import type { DiskFigures, StoreState, StoreStats } from './types.js';

const DROP_LOG_EVERY_MS = 60_000;

export interface MemoryView {
  memory: readonly Entry[];
  unnumbered: ReadonlyArray<{ event: { type: string }; createdMs: number }>;
  ackedThrough: number;
  opened: boolean;
  closed: boolean;
  failing: boolean;
  consumoFlushMs: number;
  outbox: boolean;
}

export class StoreFigures {
  disk: DiskFigures = { depth: 0, bytes: 0, dbBytes: 0 };
  writeFailures = 0;
  droppedConsumo = 0;
  down = false;
  stalled = false;
  private dropsNotLogged = 0;
  private lastDropLogMs = -Infinity;
  private lastDropReason = 'store_full';
  private lastFullWarningMs = -Infinity;

  constructor(
    private readonly log: Logger,
    private readonly maxBytes: number,
    private readonly now: () => number,
  ) {}

  compute(view: MemoryView): StoreStats {
    const nowMs = this.now();
    let depth = this.disk.depth;
    let bytes = this.disk.bytes;
    let oldest = this.disk.oldestCreatedMs;
    let pending = 0;
    let oldestPending: number | undefined;
    const notePending = (createdMs: number) => {
      pending += 1;
      oldestPending = oldestPending === undefined ? createdMs : Math.min(oldestPending, createdMs);
    };
    for (const entry of view.memory) {
      if (entry.state !== 'durable' && entry.queued) {
        depth += 1;
        bytes += entry.bytes;
      }
      if (entry.queued && entry.seq > view.ackedThrough && (oldest === undefined || entry.createdMs < oldest)) oldest = entry.createdMs;
      const due = entry.session || entry.state === 'inflight' || nowMs - entry.createdMs >= view.consumoFlushMs;
      if (entry.state !== 'durable' && due) notePending(entry.createdMs);
    }
    for (const item of view.unnumbered) {
      if (view.outbox || item.event.type !== 'CONSUMO') depth += 1;
      if (item.event.type !== 'CONSUMO') notePending(item.createdMs);
      if (oldest === undefined || item.createdMs < oldest) oldest = item.createdMs;
    }
    return {
      state: this.state(view),
      depth,
      oldestCreatedMs: depth > 0 ? oldest : undefined,
      droppedConsumo: this.droppedConsumo,
      outboxBytes: bytes,
      dbBytes: this.disk.dbBytes,
      inMemory: view.memory.length + view.unnumbered.length,
      pending,
      oldestPendingMs: oldestPending,
      writeFailures: this.writeFailures,
    };
  }

  private state(view: MemoryView): StoreState {
    if (view.closed) return 'closed';
    if (this.down) return 'down';
    if (!view.opened) return 'opening';
    if (this.stalled) return 'stalled';
    return view.failing ? 'failing' : 'ok';
  }

  noteDropped(count: number, reason: string): void {
    this.droppedConsumo += count;
    this.dropsNotLogged += count;
    this.lastDropReason = reason;
    this.flushDropLog();
  }

  /** At most one `outbox_dropped` line a minute, with the count since the last one. */
  flushDropLog(): void {
    const nowMs = this.now();
    if (this.dropsNotLogged === 0 || nowMs - this.lastDropLogMs < DROP_LOG_EVERY_MS) return;
    this.log.warning(LOG_EVENTS.outboxDropped, {
      type: 'CONSUMO',
      count: this.dropsNotLogged,
      total: this.droppedConsumo,
      reason: this.lastDropReason,
      max_bytes: this.maxBytes,
    });
    this.dropsNotLogged = 0;
    this.lastDropLogMs = nowMs;
  }

  warnFullOfSessionEvents(): void {
    if (this.now() - this.lastFullWarningMs < DROP_LOG_EVERY_MS) return;
    this.lastFullWarningMs = this.now();
    this.log.warning(LOG_EVENTS.outboxBacklog, { reason: 'store_full_of_session_events', db_bytes: this.disk.dbBytes, max_bytes: this.maxBytes });
  }
}
