// One `STATUS?` probe of the engine over TCP, bounded by a connect timeout and a read timeout:
// it always settles, whatever the other end does (answers, refuses, resets, hangs, or is frozen).
import { connect, type Socket } from 'node:net';
import type { EngineStatus, ProbeResult } from './monitor-core.js';

export interface ProbeOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** From the request being written to the answer's newline. */
  readTimeoutMs: number;
  /** Aborting settles the probe at once as CONNECTION_ERROR "aborted". */
  signal?: AbortSignal;
}

export type Probe = (options: ProbeOptions) => Promise<ProbeResult>;

const REQUEST = 'STATUS?\n';
/** An answer is one short line; anything longer is not the engine talking. */
const MAX_ANSWER_BYTES = 256;

/** Socket error codes that mean "nobody answers in time" rather than "nobody is there". */
const TIMEOUT_CODES = new Set(['ETIMEDOUT']);

export const probeEngine: Probe = (options) =>
  new Promise<ProbeResult>((resolve) => {
    const socket = connect({ host: options.host, port: options.port });
    let received = '';
    let connected = false;
    let timer = setTimeout(() => finish('TIMEOUT', null, `no connection to ${where(options)} within ${options.connectTimeoutMs} ms`), options.connectTimeoutMs);

    const onAbort = () => finish('CONNECTION_ERROR', null, 'aborted');
    if (options.signal?.aborted) return finish('CONNECTION_ERROR', null, 'aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    function finish(status: EngineStatus, response: string | null, detail?: string): void {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      socket.on('error', () => {}); // a late RST after we gave up must not crash the process
      socket.destroy();
      resolve(detail === undefined ? { status, engineResponse: response } : { status, engineResponse: response, detail });
    }

    socket.setNoDelay(true);
    socket.on('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => finish('TIMEOUT', null, `no answer from ${where(options)} within ${options.readTimeoutMs} ms`), options.readTimeoutMs);
      socket.write(REQUEST);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const newline = received.indexOf('\n');
      if (newline >= 0) return finish(...classify(received.slice(0, newline)));
      if (received.length > MAX_ANSWER_BYTES) finish('KO', received.slice(0, 64), `answer longer than ${MAX_ANSWER_BYTES} bytes without a newline`);
    });
    socket.on('end', () => {
      // An answer without its newline still counts; nothing at all is a broken connection.
      if (received.trim()) return finish(...classify(received));
      finish('CONNECTION_ERROR', null, `${where(options)} closed the connection without answering`);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'ERROR';
      const phase = connected ? 'read' : 'connect';
      finish(TIMEOUT_CODES.has(code) ? 'TIMEOUT' : 'CONNECTION_ERROR', null, `${phase} ${code} ${where(options)}`);
    });
  });

/** `OK` (optionally `OK#…`) is healthy; `KO` and anything unexpected is a KO with the answer kept. */
function classify(line: string): [EngineStatus, string, string?] {
  const answer = line.replace(/\r$/, '').trim();
  const word = answer.split('#', 1)[0]!.toUpperCase();
  if (word === 'OK') return ['OK', answer];
  if (word === 'KO') return ['KO', answer];
  return ['KO', answer, `unexpected answer ${JSON.stringify(answer.slice(0, 64))}`];
}

function where(options: ProbeOptions): string {
  return `${options.host}:${options.port}`;
}
