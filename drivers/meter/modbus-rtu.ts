// A Modbus RTU client over an injected SerialTransport: one request on the bus at a time, a quiet
// line of 3.5 characters before each request, a deadline per attempt, retries, and a count of every
// way an attempt failed, so that a noisy RS-485 line shows up in the numbers before it stops a charge.
import { DriverError } from '../types.js';
import { sleep, systemClock, type Clock } from './clock.js';
import {
  buildReadRequest,
  EXCEPTION_NAMES,
  READ_INPUT_REGISTERS,
  READ_REQUEST_LENGTH,
  readResponseLength,
  scanResponse,
  type ReadRequest,
  type ResponseScan,
} from './rtu-frame.js';
import type { SerialTransport } from './transport.js';

/** How an attempt failed. garbage: only noise came back; partial: the head of the answer, not its tail. */
export type LineErrorKind = 'crc' | 'timeout' | 'exception' | 'garbage' | 'partial' | 'io' | 'unexpected';

export const LINE_ERROR_KINDS: readonly LineErrorKind[] = ['crc', 'timeout', 'exception', 'garbage', 'partial', 'io', 'unexpected'];

export interface LineStats {
  /** Reads asked for (each may take several attempts). */
  requests: number;
  attempts: number;
  /** Attempts answered with the awaited frame. */
  answers: number;
  /** Times noise was skipped to find the frame behind it. */
  resyncs: number;
  /** Bytes received that belonged to no awaited frame. */
  noiseBytes: number;
  /** Failed attempts by kind. */
  errors: Record<LineErrorKind, number>;
}

export interface ModbusRtuClientOptions {
  transport: SerialTransport;
  baud: number;
  /** Bits a character takes on the wire: start + 8 data + parity + stop. Default 10 (8N1). */
  bitsPerChar?: number;
  /** How long the server may take to start answering, on top of the wire time of both frames. */
  timeoutMs: number;
  /** Further attempts after a failed one. */
  retries: number;
  clock?: Clock;
}

/** Exceptions worth asking again: the server was busy or failed once; the others answer the same every time. */
const RETRIED_EXCEPTIONS = new Set([4, 5, 6]);
/** Above 19200 baud the standard fixes the inter-frame silence at 1750 µs. */
const FAST_LINE_SILENCE_MS = 1.75;

export function bitsPerChar(parity: 'none' | 'even' | 'odd', stopBits: 1 | 2): number {
  return 1 + 8 + (parity === 'none' ? 0 : 1) + stopBits;
}

/** The quiet time (3.5 characters) that separates two RTU frames. */
export function interFrameSilenceMs(baud: number, charBits = 10): number {
  return baud > 19_200 ? FAST_LINE_SILENCE_MS : (3.5 * charBits * 1000) / baud;
}

/** What came back for one attempt: a scan of the bytes received, or the port failing. */
type Outcome = { scan: ResponseScan; receivedBytes: number } | { ioDetail: string };

interface Pending {
  request: ReadRequest;
  received: Uint8Array;
  settle: (outcome: Outcome) => void;
}

const emptyErrors = (): Record<LineErrorKind, number> =>
  Object.fromEntries(LINE_ERROR_KINDS.map((kind) => [kind, 0])) as Record<LineErrorKind, number>;

const concat = (a: Uint8Array, b: Uint8Array) => {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
};

/** The message of a DriverError without its code prefix. */
const detailOf = (error: DriverError) => error.message.slice(error.code.length + 2);

export class ModbusRtuClient {
  private readonly clock: Clock;
  private readonly charBits: number;
  private queue: Promise<unknown> = Promise.resolve();
  private pending: Pending | undefined;
  private lastBusActivityMs = Number.NEGATIVE_INFINITY;
  private unsubscribe: Array<() => void> = [];
  private readonly counters: LineStats = { requests: 0, attempts: 0, answers: 0, resyncs: 0, noiseBytes: 0, errors: emptyErrors() };

  constructor(private readonly options: ModbusRtuClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.charBits = options.bitsPerChar ?? 10;
  }

  get path(): string {
    return this.options.transport.path;
  }

  get isOpen(): boolean {
    return this.options.transport.isOpen;
  }

  async open(): Promise<void> {
    const { transport } = this.options;
    this.detach();
    this.unsubscribe = [transport.onData((bytes) => this.receive(bytes)), transport.onClose((error) => this.lost(error))];
    try {
      await transport.open();
    } catch (error) {
      this.detach();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.detach();
    this.pending?.settle({ ioDetail: 'the port was closed during the request' });
    await this.options.transport.close();
  }

  stats(): LineStats {
    return { ...this.counters, errors: { ...this.counters.errors } };
  }

  /** Reads count input registers (function 0x04) from address; resolves with their 2·count bytes. */
  readInputRegisters(unit: number, address: number, count: number): Promise<Uint8Array> {
    return this.read({ unit, functionCode: READ_INPUT_REGISTERS, address, count });
  }

  read(request: ReadRequest): Promise<Uint8Array> {
    const run = this.queue.then(() => this.withRetries(request));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async withRetries(request: ReadRequest): Promise<Uint8Array> {
    this.counters.requests += 1;
    const frame = buildReadRequest(request);
    const attempts = this.options.retries + 1;
    let lastError: DriverError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        return await this.attempt(request, frame);
      } catch (error) {
        lastError = this.asDriverError(request, error);
        this.counters.errors[lastError.fields.kind as LineErrorKind] += 1;
        if (!this.worthRetrying(lastError)) throw this.withAttempts(lastError, attempt);
      }
    }
    throw this.withAttempts(lastError!, attempts);
  }

  private worthRetrying(error: DriverError): boolean {
    if (error.fields.kind === 'io') return false;
    if (error.fields.kind === 'exception') return RETRIED_EXCEPTIONS.has(error.fields.exceptionCode as number);
    return true;
  }

  private withAttempts(error: DriverError, attempts: number): DriverError {
    if (attempts === 1) return error;
    return new DriverError(error.code, `${detailOf(error)} (after ${attempts} attempts)`, { ...error.fields, attempts });
  }

  private async attempt(request: ReadRequest, frame: Uint8Array): Promise<Uint8Array> {
    await this.waitForSilence();
    this.counters.attempts += 1;
    const deadlineMs = this.options.timeoutMs + this.wireTimeMs(READ_REQUEST_LENGTH + readResponseLength(request.count));
    const outcome = await new Promise<Outcome>((resolve) => {
      const pending: Pending = {
        request,
        received: new Uint8Array(),
        settle: (result) => {
          if (this.pending !== pending) return;
          this.clock.clearTimeout(timer);
          this.pending = undefined;
          resolve(result);
        },
      };
      const timer = this.clock.setTimeout(
        () => pending.settle({ scan: scanResponse(pending.received, request), receivedBytes: pending.received.length }),
        deadlineMs,
      );
      this.pending = pending;
      this.options.transport.write(frame).then(
        () => this.markBusActivity(),
        (error: unknown) => pending.settle({ ioDetail: `writing failed: ${(error as Error).message}` }),
      );
    });
    if ('ioDetail' in outcome) throw this.ioError(request, outcome.ioDetail);
    return this.conclude(request, outcome.scan, outcome.receivedBytes);
  }

  private conclude(request: ReadRequest, scan: ResponseScan, receivedBytes: number): Uint8Array {
    const where = `unit ${request.unit} on ${this.path}`;
    const fail = (code: string, message: string, fields: Record<string, unknown>): never => {
      throw new DriverError(code, message, { unit: request.unit, path: this.path, ...fields });
    };
    switch (scan.kind) {
      case 'data':
        this.counters.answers += 1;
        if (scan.start > 0) this.counters.resyncs += 1;
        return scan.registerBytes;
      case 'exception': {
        const name = EXCEPTION_NAMES[scan.exceptionCode] ?? 'unknown exception';
        const registers = `${request.count} registers at 0x${request.address.toString(16).padStart(4, '0')}`;
        return fail('METER_EXCEPTION', `${where} answered exception ${scan.exceptionCode} (${name}) to a read of ${registers}`, {
          kind: 'exception',
          exceptionCode: scan.exceptionCode,
        });
      }
      case 'unexpected':
        return fail(
          'METER_UNEXPECTED_FRAME',
          `${where}: got a frame with the wrong ${scan.reason} (unit ${scan.unit}, function 0x${scan.functionCode.toString(16)}); is another device on the bus using this address?`,
          { kind: 'unexpected', reason: scan.reason },
        );
      case 'crc':
        return fail('METER_CRC', `bad CRC in the answer of ${where}: check the RS-485 wiring (twisted pair, A/B, 120 Ω termination at both ends)`, { kind: 'crc' });
      case 'incomplete':
        if (receivedBytes === 0) return fail('METER_TIMEOUT', `no answer from ${where} within ${this.options.timeoutMs} ms`, { kind: 'timeout' });
        if (scan.start < receivedBytes) {
          const expected = readResponseLength(request.count);
          return fail('METER_PARTIAL_FRAME', `${where} sent ${receivedBytes - scan.start} of ${expected} bytes of its answer, then stopped`, { kind: 'partial' });
        }
        return fail('METER_GARBAGE', `only noise (${receivedBytes} bytes) from ${where}: check the baud rate, parity and the RS-485 wiring`, { kind: 'garbage' });
    }
  }

  private receive(bytes: Uint8Array): void {
    this.markBusActivity();
    const pending = this.pending;
    if (!pending) {
      this.counters.noiseBytes += bytes.length;
      return;
    }
    pending.received = concat(pending.received, bytes);
    const scan = scanResponse(pending.received, pending.request);
    if (scan.kind === 'incomplete') return;
    this.counters.noiseBytes += scan.start + (pending.received.length - scan.end);
    pending.settle({ scan, receivedBytes: pending.received.length });
  }

  private lost(error?: Error): void {
    this.pending?.settle({ ioDetail: `the port was lost${error ? `: ${error.message}` : ''}` });
  }

  private ioError(request: ReadRequest, detail: string): DriverError {
    return new DriverError('METER_IO', `unit ${request.unit} on ${this.path}: ${detail}`, { kind: 'io', unit: request.unit, path: this.path });
  }

  private asDriverError(request: ReadRequest, error: unknown): DriverError {
    if (error instanceof DriverError && typeof error.fields.kind === 'string') return error;
    return this.ioError(request, (error as Error).message);
  }

  private markBusActivity(): void {
    this.lastBusActivityMs = this.clock.now();
  }

  private wireTimeMs(bytes: number): number {
    return (bytes * this.charBits * 1000) / this.options.baud;
  }

  private async waitForSilence(): Promise<void> {
    const silenceMs = interFrameSilenceMs(this.options.baud, this.charBits);
    for (;;) {
      const quietMs = this.clock.now() - this.lastBusActivityMs;
      if (quietMs >= silenceMs) break;
      await sleep(this.clock, Math.ceil(silenceMs - quietMs));
    }
  }

  private detach(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.unsubscribe = [];
  }
}
