// The seq mark: one small file beside the database holding the highest seq handed out (and the open
// session's latest CONSUMO reading), rewritten in place as numbers are handed out, without fsync.
//
// Why: CONSUMO are sent to Kafka from memory and, while Kafka acknowledges them, never committed
// (SD cards wear out). Their seq must still never be handed out again after a crash, or a new message
// would reach the central system under an id it already has. A write to the page cache survives the
// death of the process (kill -9, OOM, the watchdog's abort): the next start reads the mark and goes on
// after it, so seq stays gapless and never repeats. A power cut may lose the last writes; the opening
// code tells that case by the boot id and skips ahead instead (see opening.ts).
//
// The writer runs on the main thread through libuv's thread pool (FileHandle.write, never a *Sync
// call), one write in flight at a time, the newest value winning.
import { constants, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Fixed-size record, overwritten in place: a shorter value never leaves the tail of a longer one. */
const RECORD_BYTES = 384;

export interface MarkReading {
  session: string;
  kwh: number;
  importe: number;
  meter?: number;
  at: string;
}

export interface SeqMark {
  ledger: string;
  seq: number;
  boot: string;
  reading?: MarkReading;
}

/** Reads the mark (worker thread, at open); undefined when missing or unreadable. */
export function readSeqMark(path: string): SeqMark | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as SeqMark;
    return typeof parsed.seq === 'number' && typeof parsed.ledger === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export class SeqMarkWriter {
  private handle: FileHandle | undefined;
  private opening: Promise<void> | undefined;
  private wanted: SeqMark | undefined;
  private writing: Promise<void> | undefined;
  private failed = false;
  /** Highest seq whose mark write has completed. */
  through = 0;

  constructor(
    private readonly path: string,
    private readonly onError: (error: Error) => void,
    private readonly onAdvance: () => void,
  ) {}

  /** Asks for the mark to cover `mark.seq`; returns at once. */
  advance(mark: SeqMark): void {
    if (this.wanted && mark.seq < this.wanted.seq) return;
    this.wanted = mark;
    this.writing ??= this.writeLoop();
  }

  /** Resolves once the writes asked for so far are done (or failed). */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Closes the file; with `sync`, fdatasync first (a clean stop: the mark survives a power cut too). */
  async close(sync: boolean): Promise<void> {
    await this.settled();
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) return;
    try {
      if (sync) await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.wanted && this.wanted.seq > this.through) {
        const mark = this.wanted;
        await this.write(mark);
        this.through = Math.max(this.through, mark.seq);
        if (this.failed) this.failed = false;
        this.onAdvance();
      }
    } catch (error) {
      // Until a write works again, CONSUMO leave memory only once committed (see client.ts).
      if (!this.failed) this.onError(error as Error);
      this.failed = true;
    } finally {
      this.writing = undefined;
    }
  }

  private async write(mark: SeqMark): Promise<void> {
    if (!this.handle) {
      this.opening ??= open(this.path, constants.O_RDWR | constants.O_CREAT, 0o640).then((handle) => {
        this.handle = handle;
      });
      try {
        await this.opening;
      } finally {
        this.opening = undefined;
      }
    }
    const text = JSON.stringify(mark);
    const record = Buffer.alloc(RECORD_BYTES, ' ');
    record.write(text.length < RECORD_BYTES - 1 ? text : JSON.stringify({ ...mark, reading: undefined }), 0, 'utf8');
    record.write('\n', RECORD_BYTES - 1);
    await this.handle!.write(record, 0, RECORD_BYTES, 0);
  }
}
