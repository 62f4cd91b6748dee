// The OCPP offline queue on disk: an append-only journal of JSON lines at <stateDir>/ocpp/journal.jsonl.
//
// Why a journal and not the SQLite ledger: the main thread must not block on SQLite or a *Sync fs call
// while charging, and what OCPP owes is small and written in order (a few lines per transaction, one
// per MeterValues sample). So: fs/promises appends, group-committed with FileHandle.datasync() before
// the message may be sent; at start the journal is replayed, a torn last line (a write cut short by a
// crash or a power cut) is cut off, and what was not acknowledged is sent again, in order.
//
// Records: msg (a transaction message owed to the CSMS, seq order), ack (the CSMS answered it), txid
// (StartTransaction answered: session → transactionId), config (a ChangeConfiguration that persists).
// Once nothing is owed and no transaction is open, the journal is rewritten with only the config records.
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export type TransactionAction = 'StartTransaction' | 'StopTransaction' | 'MeterValues';

export interface MessageRecord {
  t: 'msg';
  seq: number;
  session: string;
  action: TransactionAction;
  payload: Record<string, unknown>;
  /** The import register carried by the message (meterStart, a sample, meterStop), for crash recovery. */
  energyWh?: number;
  atMs: number;
}

export type JournalRecord =
  | MessageRecord
  | { t: 'ack'; seq: number }
  | { t: 'txid'; session: string; id: number }
  | { t: 'config'; key: string; value: string };

export interface OpenTransaction {
  session: string;
  idTag: string;
  lastEnergyWh: number;
  lastAtMs: number;
}

export interface JournalState {
  /** Messages not yet acknowledged, in seq order. */
  pending: MessageRecord[];
  transactionIds: Map<string, number>;
  /** Transactions with a StartTransaction and no StopTransaction: a crash cut them short. */
  open: Map<string, OpenTransaction>;
  config: Map<string, string>;
  nextSeq: number;
  /** Bytes of whole lines; anything after is a torn write. */
  validBytes: number;
  badLines: number;
}

export const JOURNAL_FILE = join('ocpp', 'journal.jsonl');
const COMPACT_AFTER_BYTES = 64 * 1024;

/** Rebuilds the state from the journal's text. Pure. */
export function replayJournal(text: string): JournalState {
  const state: JournalState = { pending: [], transactionIds: new Map(), open: new Map(), config: new Map(), nextSeq: 1, validBytes: 0, badLines: 0 };
  const acked = new Set<number>();
  const messages: MessageRecord[] = [];
  const end = text.lastIndexOf('\n') + 1;
  state.validBytes = Buffer.byteLength(text.slice(0, end));
  for (const line of text.slice(0, end).split('\n')) {
    if (line === '') continue;
    const record = parseRecord(line);
    if (!record) {
      state.badLines += 1;
      continue;
    }
    if (record.t === 'msg') messages.push(record);
    else if (record.t === 'ack') acked.add(record.seq);
    else if (record.t === 'txid') state.transactionIds.set(record.session, record.id);
    else state.config.set(record.key, record.value);
  }
  messages.sort((a, b) => a.seq - b.seq);
  for (const message of messages) {
    state.nextSeq = Math.max(state.nextSeq, message.seq + 1);
    if (!acked.has(message.seq)) state.pending.push(message);
    trackOpen(state.open, message);
  }
  return state;
}

function trackOpen(open: Map<string, OpenTransaction>, message: MessageRecord): void {
  if (message.action === 'StopTransaction') {
    open.delete(message.session);
    return;
  }
  const known = open.get(message.session);
  if (message.action === 'StartTransaction') {
    open.set(message.session, { session: message.session, idTag: String(message.payload.idTag), lastEnergyWh: message.energyWh ?? 0, lastAtMs: message.atMs });
  } else if (known && message.energyWh !== undefined) {
    known.lastEnergyWh = message.energyWh;
    known.lastAtMs = message.atMs;
  }
}

function parseRecord(line: string): JournalRecord | undefined {
  try {
    const value = JSON.parse(line) as JournalRecord;
    if (value && typeof value === 'object' && ['msg', 'ack', 'txid', 'config'].includes(value.t)) return value;
  } catch {
    // a line cut short or overwritten: reported as badLines
  }
  return undefined;
}

/** Appends records durably, in order; concurrent appends share one write and one datasync. */
export class Journal {
  private waiting: Array<{ line: string; done: (error?: Error) => void }> = [];
  private flushing: Promise<void> | undefined;
  private bytes: number;

  private constructor(
    readonly path: string,
    private handle: FileHandle,
    validBytes: number,
  ) {
    this.bytes = validBytes;
  }

  static async open(stateDir: string): Promise<{ journal: Journal; state: JournalState }> {
    const path = join(stateDir, JOURNAL_FILE);
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, 'a+');
    const text = await handle.readFile('utf8');
    const state = replayJournal(text);
    if (state.validBytes < Buffer.byteLength(text)) {
      await handle.truncate(state.validBytes); // cut the torn tail, so the next line starts clean
      await handle.datasync();
    }
    return { journal: new Journal(path, handle, state.validBytes), state };
  }

  append(record: JournalRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ line: JSON.stringify(record) + '\n', done: (error) => (error ? reject(error) : resolve()) });
      this.flushing ??= this.flush();
    });
  }

  /**
   * Rewrites the journal with only `keep()` (atomic: temp file, datasync, rename), once it has grown and
   * while `stillIdle()` says nothing is owed — asked after the pending writes, right before the rewrite
   * starts, so a record appended meanwhile is never rewritten away (it waits and goes to the new file).
   */
  async compact(keep: () => JournalRecord[], stillIdle: () => boolean): Promise<void> {
    if (this.bytes < COMPACT_AFTER_BYTES) return;
    while (this.flushing) await this.flushing;
    if (!stillIdle() || this.waiting.length > 0) return;
    this.flushing = this.rewrite(keep()).finally(() => {
      this.flushing = undefined;
      if (this.waiting.length > 0) this.flushing = this.flush();
    });
    return this.flushing;
  }

  private async rewrite(keep: JournalRecord[]): Promise<void> {
    const temp = `${this.path}.tmp`;
    const text = keep.map((record) => JSON.stringify(record) + '\n').join('');
    const out = await open(temp, 'w');
    try {
      await out.writeFile(text);
      await out.datasync();
    } finally {
      await out.close();
    }
    await rename(temp, this.path);
    await this.handle.close();
    this.handle = await open(this.path, 'a+');
    this.bytes = Buffer.byteLength(text);
    const dir = await open(dirname(this.path), 'r');
    await dir.sync().finally(() => dir.close());
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.handle.close();
  }

  private async flush(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      const text = batch.map((entry) => entry.line).join('');
      try {
        await this.handle.write(text);
        await this.handle.datasync();
        this.bytes += Buffer.byteLength(text);
        for (const entry of batch) entry.done();
      } catch (error) {
        for (const entry of batch) entry.done(error as Error);
      }
    }
    this.flushing = undefined;
  }
}
