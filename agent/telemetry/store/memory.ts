// What the store holds in memory on the main thread, in seq order: every outbox entry the worker has
// not confirmed (a session event waiting for its commit, CONSUMO waiting for their flush or for Kafka)
// and, so they can be sent without reading the disk, committed entries Kafka has not acknowledged.
//
// Bounded by `max` entries. Past it, committed entries go first (they are on disk: read back when
// their turn to be sent comes), then the oldest uncommitted CONSUMO (counted as dropped). A session
// event is never dropped: until the worker confirms it, it stays, over the bound if it must.
import type { DeliveredEvent } from '../types.js';
import type { OutboxEntry } from './types.js';

export type EntryState = 'waiting' | 'inflight' | 'durable';

export interface Entry extends OutboxEntry {
  event: DeliveredEvent;
  /** A session event (everything but CONSUMO): committed at once, never dropped. */
  session: boolean;
  /** In the outbox for Kafka (Kafka on); otherwise kept only until its ledger update is committed. */
  queued: boolean;
  state: EntryState;
  /** Settles the append's `durable` promise: true once committed or acknowledged, false if dropped or lost. */
  settle?: (ok: boolean) => void;
}

export interface Eviction {
  /** Highest seq of a committed entry taken out of memory (0 when none): read from disk from now on. */
  diskOnlyThrough: number;
  droppedConsumo: number;
}

export class MemoryQueue {
  private entries: Entry[] = [];

  constructor(readonly max: number) {}

  get length(): number {
    return this.entries.length;
  }

  all(): readonly Entry[] {
    return this.entries;
  }

  push(entry: Entry): Eviction {
    this.entries.push(entry);
    return this.enforceBound();
  }

  /** Removes the entries the predicate selects, settling nothing. */
  remove(predicate: (entry: Entry) => boolean): Entry[] {
    const removed: Entry[] = [];
    this.entries = this.entries.filter((entry) => {
      if (!predicate(entry)) return true;
      removed.push(entry);
      return false;
    });
    return removed;
  }

  private enforceBound(): Eviction {
    const eviction: Eviction = { diskOnlyThrough: 0, droppedConsumo: 0 };
    if (this.entries.length <= this.max) return eviction;
    let excess = this.entries.length - this.max;
    const keep: Entry[] = [];
    // First pass: committed entries (on disk already) leave memory, oldest first.
    for (const entry of this.entries) {
      if (excess > 0 && entry.state === 'durable') {
        eviction.diskOnlyThrough = Math.max(eviction.diskOnlyThrough, entry.seq);
        excess -= 1;
        continue;
      }
      keep.push(entry);
    }
    this.entries = keep;
    if (excess === 0) return eviction;
    // Second pass: the oldest CONSUMO no one has stored. Never a session event.
    this.entries = this.entries.filter((entry) => {
      if (excess === 0 || entry.session || entry.state !== 'waiting') return true;
      excess -= 1;
      eviction.droppedConsumo += 1;
      entry.settle?.(false);
      return false;
    });
    return eviction;
  }
}
