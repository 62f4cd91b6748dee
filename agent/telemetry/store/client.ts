// Over 400 lines (about 560): the main thread's half of the store protocol — numbering, the memory
// bound, commits in flight, the seq mark and ledger recovery — shares one state and one set of
// invariants (a seq leaves only once durable or covered); split further it would need them exported.
//
// The local store as the main thread sees it: the session ledger and the outbox of telemetry Kafka has
// not acknowledged, in one SQLite database that only the store's worker thread touches (worker.ts).
// Nothing here waits on the disk: append() numbers the event and returns at once, the worker's replies
// settle what was written, and every figure /health, /metrics and INFO read is kept here, in memory.
//
// What reaches the disk, and when (SD cards wear out):
// - a session event (SESSION_STARTED, SUPPLY_END, AVERIADO, CP_STATUS) is sent to the worker at once,
//   with the ledger update it implies; its append's `durable` promise resolves when that commit is
//   done. Only then does it go to Kafka (so the ledger never lacks a session event Kafka has);
// - CONSUMO samples wait in memory and, while Kafka acknowledges them promptly, never touch the disk:
//   they go to Kafka from memory as soon as the seq mark covers their seq (seq-mark.ts). Once the
//   oldest has waited consumoFlushMs unacknowledged, every waiting sample is committed in one
//   transaction; the rest are committed at close;
// - an open session's last reading is saved in the ledger every ledgerCheckpointMs and with each
//   commit, and in the seq mark with every CONSUMO, so a crash closes it with a recent reading.
// seq follows the last one handed out, across restarts and crashes (opening.ts): a gap on the topic is
// a lost message. A crash (kill -9) loses exactly what was in memory only: CONSUMO not yet acknowledged
// nor flushed, and a session event whose commit had not finished; those show as gaps.
// Bounded by maxBytes on disk (the worker evicts the oldest CONSUMO) and by memoryMaxEntries here
// (memory.ts); a session event is never dropped. A failed write (SQLITE_FULL, SQLITE_IOERR, ENOSPC)
// is logged once as store_error and retried every 5 s; a worker that stops answering is `store_stalled`.
import { LOG_EVENTS } from '../../logging/events.js';
import { OutageLog } from '../../logging/outage-log.js';
import type { TelemetryEvent } from '../../charging/types.js';
import type { DeliveredEvent } from '../types.js';
import { closeInterrupted, type DurableConsumo } from './billing.js';
import { readingOf } from './ledger.js';
import { MemoryQueue, type Entry } from './memory.js';
import { seqMarkPath, storePath, type OpenedState } from './opening.js';
import { SeqMarkWriter, type MarkReading } from './seq-mark.js';
import { StoreFigures } from './figures.js';
import type { DiskFigures, InterruptedSession, LedgerSession, OutboxEntry, SessionReading, StoreOptions, StoreStats } from './types.js';
import { WorkerHost, spawnStoreWorker, type Done } from './worker-host.js';
import type { Worker } from 'node:worker_threads';
import type { WorkerInit } from './protocol.js';

const MEMORY_MAX_ENTRIES = 10_000;
const RETRY_AFTER_FAILURE_MS = 5_000;
const STALL_AFTER_MS = 10_000;
const PENDING_MAX_AGE_MS = 10_000;

export interface Appended {
  /** seq and id, as soon as they are given (at once, or when the store has opened); undefined after close. */
  numbered: Promise<DeliveredEvent | undefined>;
  /** True once committed (or, for CONSUMO, acknowledged by Kafka); false if dropped or lost at close. Never rejects. */
  durable: Promise<boolean>;
}

export interface TelemetryStore {
  readonly path: string;
  /** Resolves once the database is open (retried every 5 s while it cannot be; never rejects). */
  readonly opened: Promise<void>;
  append(event: TelemetryEvent): Appended;
  /** The oldest messages that may be sent now, in seq order: committed ones, and CONSUMO the seq mark covers. */
  nextBatch(limit: number, maxBytes?: number): Promise<OutboxEntry[]>;
  /** Kafka acknowledged these (a prefix of nextBatch()): never sent again; rows deleted by the worker. */
  acknowledge(entries: readonly OutboxEntry[]): void;
  /** Periodic (about once a second, cheap): CONSUMO flush, ledger checkpoint, retries, stall watch. */
  maintain(): void;
  /** Closes the sessions a crash left open (reason interrupted), after the store has opened. */
  recoverInterrupted(final?: import('./types.js').FinalReading): Promise<InterruptedSession[]>;
  /** Sessions in the ledger when it opened. */
  sessionCount(): Promise<number>;
  listSessions(limit: number): Promise<LedgerSession[]>;
  stats(): StoreStats;
  /** Called when entries may have become sendable (a commit, the seq mark, an append). */
  onChange(listener: () => void): void;
  /** Resolves when no commit is in flight and nothing due is waiting (tests, close). */
  settled(): Promise<void>;
  /** Commits what waits in memory, marks a clean stop, closes; within deadlineMs. Safe to call twice. */
  close(deadlineMs?: number): Promise<void>;
}

export interface StoreTestHooks {
  /** Replaces the worker thread (tests: one that never answers). */
  spawn?: (init: WorkerInit) => Worker;
}

export function openTelemetryStore(options: StoreOptions, hooks: StoreTestHooks = {}): TelemetryStore {
  return new StoreClient(options, hooks);
}

interface Unnumbered {
  event: TelemetryEvent;
  createdMs: number;
  numbered: (delivered: DeliveredEvent | undefined) => void;
  durable: (ok: boolean) => void;
}

class StoreClient implements TelemetryStore {
  readonly path: string;
  readonly opened: Promise<void>;
  private resolveOpened!: () => void;
  private readonly now: () => number;
  private readonly log: StoreOptions['log'];
  private readonly outage: OutageLog;
  private readonly memory: MemoryQueue;
  private readonly figures: StoreFigures;
  private readonly mark: SeqMarkWriter;
  private host: WorkerHost | undefined;
  private state: OpenedState | undefined;
  private unnumbered: Unnumbered[] = [];
  private nextSeq = 0;
  private readonly readings = new Map<string, SessionReading>();
  private readonly dirtyReadings = new Set<string>();
  private markReading: MarkReading | undefined;
  private lastCheckpointMs: number;
  private commitInFlight: Promise<void> | undefined;
  private failing = false;
  private nextRetryMs = 0;
  private ackedThrough = 0;
  /** Committed rows up to this seq may be on disk only (left by the last run, or out of memory at the bound). */
  private diskOnlyThrough = 0;
  /** A peek found no row on disk up to here. */
  private diskEmptyThrough = 0;
  private flushEverything = false;
  private closing: Promise<void> | undefined;
  private closed = false;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stalledSinceMs: number | undefined;
  private readonly listeners: Array<() => void> = [];
  private warnedClosed = false;
  /** Sessions this process started: never "left open by a crash", whenever the store opened. */
  private readonly startedThisRun = new Set<string>();
  private readonly startedMs = Date.now();
  private readonly retryAfterFailureMs: number;

  constructor(
    private readonly options: StoreOptions,
    private readonly hooks: StoreTestHooks,
  ) {
    this.path = storePath(options.stateDir);
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.retryAfterFailureMs = options.retryAfterFailureMs ?? RETRY_AFTER_FAILURE_MS;
    this.lastCheckpointMs = this.now();
    this.outage = new OutageLog(options.log, { events: { down: LOG_EVENTS.storeError, still: LOG_EVENTS.storeError, up: LOG_EVENTS.storeRecovered } });
    this.memory = new MemoryQueue(options.memoryMaxEntries ?? MEMORY_MAX_ENTRIES);
    this.figures = new StoreFigures(options.log, options.maxBytes, this.now);
    this.mark = new SeqMarkWriter(
      seqMarkPath(options.stateDir),
      (error) => this.log.err(LOG_EVENTS.storeError, { op: 'seq_mark', error: error.message, path: seqMarkPath(options.stateDir) }),
      () => this.changed(),
    );
    this.opened = new Promise((resolve) => (this.resolveOpened = resolve));
    this.startWorker();
  }

  // ---------------------------------------------------------------- the worker's life

  private startWorker(): void {
    this.host = new WorkerHost(
      { stateDir: this.options.stateDir, maxBytes: this.options.maxBytes, nowMs: this.now() },
      {
        onOpened: (state) => this.onOpened(state),
        onOpenFailed: (error) => {
          this.log.crit(LOG_EVENTS.storeError, { op: 'open', error, path: this.path, retry_in_ms: this.retryAfterFailureMs });
          this.figures.down = true;
          void this.host?.terminate();
        },
        onExit: (error) => {
          if (this.closed || this.closing) return;
          this.log.crit(LOG_EVENTS.storeError, { op: 'worker', error, path: this.path, retry_in_ms: this.retryAfterFailureMs });
          this.figures.down = true;
          this.reopenTimer = setTimeout(() => this.startWorker(), this.retryAfterFailureMs);
          this.reopenTimer.unref();
        },
      },
      this.hooks.spawn ?? spawnStoreWorker,
    );
  }

  private onOpened(state: OpenedState): void {
    const first = this.state === undefined;
    this.figures.down = false;
    this.state = state;
    this.figures.disk = state.disk;
    this.nextSeq = Math.max(this.nextSeq, state.nextSeq);
    this.diskOnlyThrough = Math.max(this.diskOnlyThrough, state.diskMaxSeq);
    if (state.movedAside) this.log.err(LOG_EVENTS.storeError, { op: 'open', code: state.movedAside.code, error: state.movedAside.error, path: this.path, moved_to: state.movedAside.to });
    if (state.skipped) this.log.warning(LOG_EVENTS.seqSkipped, { ...state.skipped, path: this.path });
    if (first) {
      this.markReading = state.markReading;
      this.log.info(LOG_EVENTS.storeOpened, {
        path: this.path,
        open_ms: Date.now() - this.startedMs,
        next_seq: state.nextSeq,
        sessions: state.sessionCount,
        outbox_depth: state.disk.depth,
        waiting: this.unnumbered.length,
      });
    }
    else {
      // A new worker after the last one died: what it may not have committed is sent again (idempotent).
      for (const entry of this.memory.all()) if (entry.state === 'inflight') entry.state = 'waiting';
      if (this.ackedThrough > 0) void this.host!.request({ op: 'ack', through: this.ackedThrough }).then((done) => this.applyDisk(done));
    }
    const waiting = this.unnumbered;
    this.unnumbered = [];
    for (const item of waiting) this.number(item);
    this.resolveOpened();
    this.pump();
    this.changed();
  }

  // ---------------------------------------------------------------- appending

  append(event: TelemetryEvent): Appended {
    if (this.closed || this.closing) {
      if (!this.warnedClosed) this.log.warning(LOG_EVENTS.storeError, { op: 'append', error: 'STORE_CLOSED: the telemetry store is closed', type: event.type });
      this.warnedClosed = true;
      return { numbered: Promise.resolve(undefined), durable: Promise.resolve(false) };
    }
    if (event.type === 'SESSION_STARTED' && event.session_id) this.startedThisRun.add(event.session_id);
    let numbered!: Unnumbered['numbered'];
    let durable!: Unnumbered['durable'];
    const appended: Appended = {
      numbered: new Promise((resolve) => (numbered = resolve)),
      durable: new Promise((resolve) => (durable = resolve)),
    };
    const item = { event, createdMs: this.now(), numbered, durable };
    if (this.state) this.number(item);
    else this.holdUnnumbered(item);
    return appended;
  }

  /** Before the database has opened there is no seq to give: the event waits (session events always). */
  private holdUnnumbered(item: Unnumbered): void {
    this.unnumbered.push(item);
    if (this.unnumbered.length <= this.memory.max) return;
    const victim = this.unnumbered.findIndex((candidate) => candidate.event.type === 'CONSUMO');
    if (victim < 0) return;
    const [dropped] = this.unnumbered.splice(victim, 1);
    dropped!.numbered(undefined);
    dropped!.durable(false);
    this.figures.noteDropped(1, 'memory_full');
  }

  private number({ event, createdMs, numbered, durable }: Unnumbered): void {
    const state = this.state!;
    const seq = this.nextSeq++;
    const delivered: DeliveredEvent = { ...event, seq, id: `${event.cp_id}-${state.ledgerId}-${seq}` };
    const sessionId = event.session_id;
    const reading = readingOf(event, sessionId ? this.readings.get(sessionId) : undefined);
    if (reading && sessionId) {
      this.readings.set(sessionId, reading);
      this.dirtyReadings.add(sessionId);
      this.markReading = { session: sessionId, kwh: reading.kwh, importe: reading.importe, meter: reading.lastImportKwh, at: reading.readingAt };
    }
    if (event.type === 'SUPPLY_END' && sessionId) {
      this.readings.delete(sessionId); // it carries the totals
      this.dirtyReadings.delete(sessionId);
      if (this.markReading?.session === sessionId) this.markReading = undefined;
    }
    this.mark.advance({ ledger: state.ledgerId, seq, boot: state.bootId, reading: this.markReading });
    numbered(delivered);
    const session = event.type !== 'CONSUMO';
    if (!session && !this.options.outbox) {
      durable(true); // Kafka off: nothing to deliver; the reading reaches the ledger with the next checkpoint
      return;
    }
    const value = JSON.stringify(delivered);
    const entry: Entry = {
      seq,
      id: delivered.id,
      type: event.type,
      value,
      bytes: Buffer.byteLength(value),
      createdMs,
      event: delivered,
      session,
      queued: this.options.outbox,
      state: 'waiting',
      settle: durable,
    };
    const eviction = this.memory.push(entry);
    this.diskOnlyThrough = Math.max(this.diskOnlyThrough, eviction.diskOnlyThrough);
    if (eviction.droppedConsumo > 0) this.figures.noteDropped(eviction.droppedConsumo, 'memory_full');
    if (session) this.pump();
    this.changed();
  }

  // ---------------------------------------------------------------- committing

  /** Sends the next commit when one is due and none is in flight. */
  private pump(): void {
    if (!this.state || !this.host?.alive || this.commitInFlight || this.closed) return;
    if (this.failing && this.now() < this.nextRetryMs) return;
    const nowMs = this.now();
    const entries = this.memory.all();
    const oldestConsumo = entries.find((entry) => !entry.session && entry.state === 'waiting');
    const consumoDue = oldestConsumo !== undefined && (this.flushEverything || nowMs - oldestConsumo.createdMs >= this.options.consumoFlushMs);
    const sessionDue = entries.some((entry) => entry.session && entry.state === 'waiting');
    const checkpointDue =
      this.dirtyReadings.size > 0 && (this.flushEverything || nowMs - this.lastCheckpointMs >= this.options.ledgerCheckpointMs);
    if (!sessionDue && !consumoDue && !checkpointDue) return;
    const batch = entries.filter((entry) => entry.state === 'waiting' && (entry.session || consumoDue));
    const readings: Array<[string, SessionReading]> = [...this.dirtyReadings].map((id) => [id, this.readings.get(id)!]);
    this.dirtyReadings.clear();
    for (const entry of batch) entry.state = 'inflight';
    this.commitInFlight = this.host
      .request({
        op: 'commit',
        rows: batch.filter((entry) => entry.queued).map(({ seq, id, type, value, bytes, createdMs }) => ({ seq, id, type, value, bytes, createdMs })),
        ledger: batch.filter((entry) => entry.session).map((entry) => entry.event),
        readings,
        seqThrough: this.nextSeq - 1,
      })
      .then((done) => this.committed(done, batch, readings));
  }

  private committed(done: Done<undefined>, batch: Entry[], readings: Array<[string, SessionReading]>): void {
    this.commitInFlight = undefined;
    this.applyDisk(done);
    if (done.ok) {
      this.lastCheckpointMs = this.now();
      for (const entry of batch) {
        if (entry.state !== 'inflight') continue; // acknowledged meanwhile: already settled and gone
        entry.state = 'durable';
        entry.settle?.(true);
        entry.settle = undefined;
      }
      this.memory.remove((entry) => entry.state === 'durable' && (!entry.queued || entry.seq <= this.ackedThrough));
      if (this.failing) {
        this.failing = false;
        this.outage.success(this.now(), { path: this.path });
      }
    } else {
      for (const entry of batch) if (entry.state === 'inflight') entry.state = 'waiting';
      for (const [id] of readings) if (this.readings.has(id)) this.dirtyReadings.add(id);
      this.failing = true;
      this.nextRetryMs = this.now() + this.retryAfterFailureMs;
      this.figures.writeFailures += 1;
      this.outage.failure(this.now(), { op: 'commit', code: done.code, error: done.error, path: this.path, in_memory: this.memory.length });
    }
    this.changed();
    this.pump();
  }

  private applyDisk(done: Done<unknown>): void {
    if (done.code === 'STORE_WORKER_EXIT') return; // no figures from a dead worker
    this.figures.disk = done.disk;
    if (done.evicted > 0) this.figures.noteDropped(done.evicted, 'store_full');
    const evictedThrough = done.evictedThrough ?? 0;
    if (evictedThrough > 0) this.memory.remove((entry) => !entry.session && entry.state === 'durable' && entry.seq <= evictedThrough);
    if (done.fullOfSessionEvents) this.figures.warnFullOfSessionEvents();
  }

  // ---------------------------------------------------------------- delivering

  async nextBatch(limit: number, maxBytes = 1024 * 1024): Promise<OutboxEntry[]> {
    if (!this.state || this.closed) return [];
    await this.mark.settled();
    let fromDisk: OutboxEntry[] = [];
    let cut = Infinity;
    const diskThrough = this.diskOnlyThrough;
    if (diskThrough > Math.max(this.ackedThrough, this.diskEmptyThrough) && this.host) {
      const done = await this.host.request({ op: 'peek', after: this.ackedThrough, limit, maxBytes });
      if (!done.ok) throw new Error(`${done.code}: cannot read the outbox: ${done.error}`);
      fromDisk = done.result.filter((row) => row.seq > this.ackedThrough);
      const last = fromDisk.at(-1);
      if (!last) this.diskEmptyThrough = Math.max(this.diskEmptyThrough, diskThrough);
      else if (last.seq < diskThrough) cut = last.seq; // rows past it may be on disk only
    }
    const onDisk = new Set(fromDisk.map((row) => row.seq));
    const inMemory = this.memory.all().filter((entry) => entry.queued && entry.seq > this.ackedThrough && entry.seq <= cut && !onDisk.has(entry.seq));
    const candidates: Array<OutboxEntry | Entry> = [...fromDisk, ...inMemory].sort((a, b) => a.seq - b.seq);
    const batch: OutboxEntry[] = [];
    let bytes = 0;
    for (const candidate of candidates) {
      if ('state' in candidate && !this.sendable(candidate)) break;
      if (batch.length >= limit || (batch.length > 0 && bytes + candidate.bytes > maxBytes)) break;
      const { seq, id, type, value, bytes: size, createdMs } = candidate;
      batch.push({ seq, id, type, value, bytes: size, createdMs });
      bytes += size;
    }
    return batch;
  }

  /** A session event only once committed; a CONSUMO once its seq can never be handed out again. */
  private sendable(entry: Entry): boolean {
    return entry.state === 'durable' || (!entry.session && entry.seq <= this.mark.through);
  }

  acknowledge(entries: readonly OutboxEntry[]): void {
    if (entries.length === 0 || this.closed) return;
    const through = Math.max(...entries.map((entry) => entry.seq));
    if (through <= this.ackedThrough) return;
    let touchesDisk = this.diskOnlyThrough > this.ackedThrough;
    for (const entry of this.memory.remove((candidate) => candidate.seq <= through)) {
      if (entry.state !== 'waiting') touchesDisk = true;
      entry.settle?.(true);
    }
    this.ackedThrough = through;
    // CONSUMO that never reached the disk cost no write when Kafka acknowledges them.
    if (touchesDisk && this.host?.alive) void this.host.request({ op: 'ack', through }).then((done) => this.applyDisk(done));
  }

  // ---------------------------------------------------------------- upkeep

  maintain(): void {
    if (this.closed) return;
    this.watchStall();
    this.figures.flushDropLog();
    this.pump();
  }

  private watchStall(): void {
    const waitedMs = this.host?.oldestOutstandingMs() ?? 0;
    const limit = this.options.stallAfterMs ?? STALL_AFTER_MS;
    if (waitedMs > limit && this.stalledSinceMs === undefined) {
      this.stalledSinceMs = Date.now() - waitedMs;
      this.figures.stalled = true;
      this.log.err(LOG_EVENTS.storeStalled, { waited_ms: waitedMs, outstanding: this.host?.outstanding, pending: this.stats().pending, path: this.path });
    } else if (waitedMs <= limit && this.stalledSinceMs !== undefined) {
      this.log.notice(LOG_EVENTS.storeRecovered, { op: 'stall', stalled_ms: Date.now() - this.stalledSinceMs, path: this.path });
      this.stalledSinceMs = undefined;
      this.figures.stalled = false;
    }
  }

  stats(): StoreStats {
    return this.figures.compute({
      memory: this.memory.all(),
      unnumbered: this.unnumbered,
      ackedThrough: this.ackedThrough,
      opened: this.state !== undefined,
      closed: this.closed,
      failing: this.failing,
      consumoFlushMs: this.options.consumoFlushMs,
      outbox: this.options.outbox,
    });
  }

  /** How long an uncommitted session event may wait before /health calls the store lagging. */
  get pendingMaxAgeMs(): number {
    return this.options.pendingMaxAgeMs ?? PENDING_MAX_AGE_MS;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  async settled(): Promise<void> {
    await this.opened;
    for (;;) {
      await this.mark.settled();
      if (this.commitInFlight) {
        await this.commitInFlight;
        continue;
      }
      this.pump();
      if (!this.commitInFlight) return;
    }
  }

  // ---------------------------------------------------------------- the ledger

  async recoverInterrupted(final?: import('./types.js').FinalReading): Promise<InterruptedSession[]> {
    await this.opened;
    if (this.closed || !this.host) return [];
    const done = await this.host.request({ op: 'open_sessions' });
    if (!done.ok) {
      this.log.err(LOG_EVENTS.storeError, { op: 'recover', code: done.code, error: done.error, path: this.path });
      return [];
    }
    const recovered: InterruptedSession[] = [];
    for (const { session, outboxConsumo } of done.result) {
      if (this.startedThisRun.has(session.id)) continue; // live: its SESSION_STARTED was written by this run
      const fromMark = this.state?.markReading?.session === session.id ? this.state.markReading : undefined;
      const candidates: DurableConsumo[] = [];
      if (outboxConsumo) candidates.push({ reading: outboxConsumo, source: 'outbox' });
      if (fromMark) candidates.push({ reading: { kwh: fromMark.kwh, importe: fromMark.importe, meterKwh: fromMark.meter, at: fromMark.at }, source: 'seq_mark' });
      const consumo = candidates.sort((a, b) => Date.parse(b.reading.at) - Date.parse(a.reading.at))[0];
      const close = closeInterrupted(session, consumo, final);
      const event: TelemetryEvent = {
        type: 'SUPPLY_END',
        cp_id: this.options.cpId,
        ts: new Date(this.now()).toISOString(),
        user_id: session.driverId,
        session_id: session.id,
        kwh: close.kwh,
        importe: close.importe,
        reason: 'interrupted',
        meter_import_kwh: close.meterKwh,
        started_at: session.startedAt,
        ended_at: close.endedAt,
      };
      const appended = this.append(event);
      const delivered = await appended.numbered;
      if (!delivered) break; // closed meanwhile
      recovered.push({
        durable: appended.durable,
        session: { ...session, kwh: close.kwh, importe: close.importe, lastImportKwh: close.meterKwh, endedAt: close.endedAt, endReason: 'interrupted' },
        event: delivered,
        closedWith: close.closedWith,
        rejected: close.rejected,
        consumoSource: close.consumoSource,
      });
    }
    return recovered;
  }

  async sessionCount(): Promise<number> {
    await this.opened;
    return this.state?.sessionCount ?? 0;
  }

  async listSessions(limit: number): Promise<LedgerSession[]> {
    await this.opened;
    if (!this.host) return [];
    const done = await this.host.request({ op: 'sessions', limit });
    if (!done.ok) throw new Error(`${done.code}: cannot read the ledger: ${done.error}`);
    return done.result;
  }

  // ---------------------------------------------------------------- closing

  close(deadlineMs = 10_000): Promise<void> {
    this.closing ??= this.shutdown(deadlineMs);
    return this.closing;
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    clearTimeout(this.reopenTimer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
    const finished = await Promise.race([this.flushAndClose(), deadline]);
    clearTimeout(timer);
    this.closed = true;
    const lost = this.memory.all().filter((entry) => entry.state !== 'durable');
    if (finished === 'late' || lost.length > 0 || this.unnumbered.length > 0) {
      this.log.err(LOG_EVENTS.storeError, {
        op: 'close',
        error: finished === 'late' ? `STORE_CLOSE_TIMEOUT: not closed within ${deadlineMs} ms` : 'STORE_CLOSE_INCOMPLETE: writes failed',
        lost_outbox: lost.length + this.unnumbered.length,
        lost_session_events: lost.filter((entry) => entry.session).length,
        path: this.path,
      });
    }
    for (const entry of this.memory.remove(() => true)) entry.settle?.(false);
    for (const item of this.unnumbered.splice(0)) {
      item.numbered(undefined);
      item.durable(false);
    }
    void this.host?.terminate();
  }

  private async flushAndClose(): Promise<'done'> {
    if (!this.state) {
      if (this.figures.down) return 'done'; // it could not open: nothing can be written
      await this.opened;
    }
    this.flushEverything = true;
    this.failing = false; // one last try, now
    await this.settled();
    if (this.failing || !this.host?.alive) return 'done';
    await this.host.request({ op: 'close', seqThrough: this.nextSeq - 1 });
    await this.mark.close(true).catch((error: Error) => this.log.err(LOG_EVENTS.storeError, { op: 'seq_mark', error: error.message }));
    return 'done';
  }
}

export type { DiskFigures };
