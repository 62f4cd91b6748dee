// Test support for the store's tests: temp directories, a settable clock, stores opened and closed
// for the test, the session events they append, and a store in another process to kill with SIGKILL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { TelemetryEvent } from '../../charging/types.js';
import { createMemoryLogger } from '../../logging/testing/memory-logger.js';
import { openTelemetryStore, readLedger, storePath, type StoreOptions, type TelemetryStore } from '../store.js';
import { spawnStoreWorker } from '../store/worker-host.js';
import { Worker } from 'node:worker_threads';
import { chargingSession } from './charging-session.js';

export const CP = 'CP-T';
export const T0 = Date.parse('2025-03-01T10:00:00Z');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'charger-store-'));
  dirs.push(dir);
  return dir;
}

export class Clock {
  constructor(public ms = T0) {}
  now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

const stores: TelemetryStore[] = [];
after(async () => {
  for (const store of stores) await store.close(1000);
});

export function open(stateDir: string, clock: Clock, overrides: Partial<StoreOptions> = {}, hooks: Parameters<typeof openTelemetryStore>[1] = {}) {
  const log = createMemoryLogger();
  const store = openTelemetryStore({
    stateDir,
    cpId: CP,
    maxBytes: 64 * 1024 * 1024,
    consumoFlushMs: 30_000,
    ledgerCheckpointMs: 60_000,
    outbox: true,
    log,
    now: clock.now,
    ...overrides,
  }, hooks);
  stores.push(store);
  return { store, log };
}

/** Appends and waits until the worker confirmed it (session events) or it is numbered (CONSUMO). */
export async function put(store: TelemetryStore, event: TelemetryEvent): Promise<{ seq: number; id: string }> {
  const appended = store.append(event);
  const delivered = await appended.numbered;
  assert.ok(delivered, 'numbered');
  if (event.type !== 'CONSUMO') assert.equal(await appended.durable, true, `${event.type} committed`);
  return delivered;
}

/** Kafka acknowledging promptly: everything sendable now is sent and acknowledged. */
export async function deliver(store: TelemetryStore, limit = 1000): Promise<number[]> {
  const batch = await store.nextBatch(limit);
  store.acknowledge(batch);
  await store.settled();
  return batch.map((entry) => entry.seq);
}

/** A store in another process, killed with SIGKILL when the test says: a real crash. */
export class Writer {
  private readonly child;
  private readonly answers;
  constructor(dir: string, checkpointMs = 60_000) {
    this.child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./store-writer.ts', import.meta.url)), dir, CP, String(checkpointMs)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.answers = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }
  async send(message: unknown): Promise<string> {
    this.child.stdin!.write(JSON.stringify(message) + '\n');
    return String((await this.answers.next()).value);
  }
  async at(ms: number): Promise<void> {
    this.child.stdin!.write(JSON.stringify({ op: 'clock', ms }) + '\n');
  }
  async kill(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** What another process would find in the file now: a second connection sees only committed data. */
export function onDisk(stateDir: string): Array<{ seq: number; type: string; id: string }> {
  const db = new Database(storePath(stateDir), { readonly: true });
  try {
    return db.prepare('SELECT seq, type, id FROM outbox ORDER BY seq').all() as Array<{ seq: number; type: string; id: string }>;
  } finally {
    db.close();
  }
}

export const status = (clock: Clock, state: 'Charging' | 'Available' = 'Charging'): TelemetryEvent => ({
  type: 'CP_STATUS',
  cp_id: CP,
  ts: new Date(clock.ms).toISOString(),
  state,
  in_service: true,
  faults: [],
});

export const consumo = (clock: Clock, kwh: number, sessionId = 'S1'): TelemetryEvent => ({
  type: 'CONSUMO',
  cp_id: CP,
  ts: new Date(clock.ms).toISOString(),
  user_id: 'D1',
  session_id: sessionId,
  kwh,
  importe: Math.round(kwh * 0.2 * 100) / 100,
  power_w: 7400,
  meter_import_kwh: 1000 + kwh,
});

export const started = (clock: Clock, sessionId = 'S1'): TelemetryEvent => ({
  type: 'SESSION_STARTED',
  cp_id: CP,
  ts: new Date(clock.ms).toISOString(),
  user_id: 'D1',
  session_id: sessionId,
  kwh: 0,
  importe: 0,
  meter_import_kwh: 1000,
});

