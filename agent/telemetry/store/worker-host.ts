// The main thread's end of the store's worker thread: starts it (compiled JavaScript, or the TypeScript
// sources through tsx when the agent itself runs from them), sends requests and matches the replies.
// Nothing here waits synchronously: a stalled worker only leaves requests outstanding, and the oldest
// one's age is what the client watches to call the store stalled.
import { Worker } from 'node:worker_threads';
import type { OpenedState } from './opening.js';
import type { RequestResults, StoreReply, StoreRequest, WorkerInit } from './protocol.js';

/** The worker's `done` reply as the caller gets it: its result typed by the request. */
export type Done<T> = Omit<Extract<StoreReply, { type: 'done' }>, 'type' | 'id' | 'result'> & { result: T };

export interface HostEvents {
  onOpened(state: OpenedState): void;
  onOpenFailed(error: string): void;
  /** The thread died (an uncaught error, or terminated): outstanding requests were answered not ok. */
  onExit(error: string): void;
}

type Pending = { sentMs: number; resolve: (done: Done<unknown>) => void };

/** Distributive Omit: keeps each request's own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class WorkerHost {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited = false;

  constructor(init: WorkerInit, events: HostEvents, spawn: (init: WorkerInit) => Worker = spawnStoreWorker) {
    this.worker = spawn(init);
    // Referenced only while it opens or a request is outstanding: an idle store never keeps a process
    // alive, a pending commit (a stop waiting for its flush) does.
    this.worker.on('message', (message: StoreReply) => {
      if (message.type === 'opened' || message.type === 'open_failed') {
        if (this.pending.size === 0) this.worker.unref();
        return message.type === 'opened' ? events.onOpened(message.state) : events.onOpenFailed(message.error);
      }
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) this.worker.unref();
      waiting.resolve({
        ok: message.ok,
        result: message.result,
        code: message.code,
        error: message.error,
        disk: message.disk,
        evicted: message.evicted,
        evictedThrough: message.evictedThrough,
        fullOfSessionEvents: message.fullOfSessionEvents,
      });
    });
    const lost = (reason: string) => {
      if (this.exited) return;
      this.exited = true;
      for (const [id, waiting] of this.pending) {
        this.pending.delete(id);
        waiting.resolve({ ok: false, result: undefined, code: 'STORE_WORKER_EXIT', error: reason, disk: { depth: 0, bytes: 0, dbBytes: 0 }, evicted: 0 });
      }
      events.onExit(reason);
    };
    this.worker.on('error', (error) => lost(`STORE_WORKER_FAILED: ${error.message}`));
    this.worker.on('exit', (code) => lost(`STORE_WORKER_EXIT: the store's worker thread exited (code ${code})`));
  }

  get alive(): boolean {
    return !this.exited;
  }

  request<R extends WithoutId<StoreRequest>>(request: R): Promise<Done<RequestResults[R['op']]>> {
    if (this.exited) {
      return Promise.resolve({ ok: false, result: undefined as RequestResults[R['op']], code: 'STORE_WORKER_EXIT', error: 'the store worker is gone', disk: { depth: 0, bytes: 0, dbBytes: 0 }, evicted: 0 });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { sentMs: Date.now(), resolve: resolve as (done: Done<unknown>) => void });
      this.worker.postMessage({ ...request, id });
    });
  }

  /** Wall-clock age of the oldest unanswered request (0 when none). */
  oldestOutstandingMs(nowMs = Date.now()): number {
    for (const waiting of this.pending.values()) return nowMs - waiting.sentMs; // Map keeps insertion order
    return 0;
  }

  get outstanding(): number {
    return this.pending.size;
  }

  async terminate(): Promise<void> {
    this.exited = true;
    await this.worker.terminate();
  }
}

/**
 * Starts worker.js beside this file; when this file is the TypeScript source (the agent runs through
 * tsx: `npm run demo`, the tests), a one-line bootstrap registers tsx in the new thread first, since a
 * worker does not inherit the loader.
 */
export function spawnStoreWorker(init: WorkerInit): Worker {
  if (import.meta.url.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./worker.ts', import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); })`;
    return new Worker(bootstrap, { eval: true, workerData: init, name: 'charger-store' });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { workerData: init, name: 'charger-store' });
}
