// Modbus RTU frames for reading registers: building requests and answers, and finding one frame in a
// byte stream that may hold noise before it, lack its tail, or carry a broken CRC.
import { hasValidCrc, withCrc } from './crc16.js';

export const READ_HOLDING_REGISTERS = 0x03;
export const READ_INPUT_REGISTERS = 0x04;
const EXCEPTION_FLAG = 0x80;

/** Exception codes of the Modbus application protocol, by code. */
export const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target failed to respond',
};

export interface ReadRequest {
  unit: number;
  functionCode: number;
  address: number;
  count: number;
}

export function buildReadRequest({ unit, functionCode, address, count }: ReadRequest): Uint8Array {
  return withCrc(Uint8Array.of(unit, functionCode, address >>> 8, address & 0xff, count >>> 8, count & 0xff));
}

export function buildReadResponse(unit: number, functionCode: number, registerBytes: Uint8Array): Uint8Array {
  const body = new Uint8Array(3 + registerBytes.length);
  body.set([unit, functionCode, registerBytes.length]);
  body.set(registerBytes, 3);
  return withCrc(body);
}

export function buildExceptionResponse(unit: number, functionCode: number, exceptionCode: number): Uint8Array {
  return withCrc(Uint8Array.of(unit, functionCode | EXCEPTION_FLAG, exceptionCode));
}

/** Bytes a read answer takes on the wire. */
export function readResponseLength(count: number): number {
  return 5 + 2 * count;
}

export const READ_REQUEST_LENGTH = 8;

/** What a response scan found. `start` is where the frame begins: the bytes before it are noise. */
export type ResponseScan =
  | { kind: 'data'; start: number; end: number; registerBytes: Uint8Array }
  | { kind: 'exception'; start: number; end: number; exceptionCode: number }
  | { kind: 'unexpected'; start: number; end: number; reason: 'unit' | 'function' | 'length'; unit: number; functionCode: number }
  | { kind: 'crc'; start: number; end: number }
  /** No complete frame yet: `start` is where the awaited frame may begin (buffer length = all noise). */
  | { kind: 'incomplete'; start: number };

type HeaderMatch = 'yes' | 'no' | 'maybe';

/** Length of a server answer starting at i, or undefined when i cannot start one (or its header is cut). */
function answerLength(bytes: Uint8Array, i: number): number | undefined {
  const functionCode = bytes[i + 1];
  if (functionCode === undefined) return undefined;
  if (functionCode & EXCEPTION_FLAG) return 5;
  if (functionCode >= 1 && functionCode <= 4) {
    const byteCount = bytes[i + 2];
    return byteCount === undefined ? undefined : 5 + byteCount;
  }
  if (functionCode === 5 || functionCode === 6 || functionCode === 15 || functionCode === 16) return 8;
  return undefined;
}

function matchesAwaitedHeader(bytes: Uint8Array, i: number, awaited: ReadRequest): HeaderMatch {
  const [unit, functionCode, byteCount] = [bytes[i], bytes[i + 1], bytes[i + 2]];
  if (unit !== awaited.unit) return 'no';
  if (functionCode === undefined) return 'maybe';
  if (functionCode === (awaited.functionCode | EXCEPTION_FLAG)) return 'yes';
  if (functionCode !== awaited.functionCode) return 'no';
  if (byteCount === undefined) return 'maybe';
  return byteCount === 2 * awaited.count ? 'yes' : 'no';
}

function classify(bytes: Uint8Array, start: number, end: number, awaited: ReadRequest): ResponseScan {
  const unit = bytes[start]!;
  const functionCode = bytes[start + 1]!;
  const unexpected = (reason: 'unit' | 'function' | 'length') =>
    ({ kind: 'unexpected', start, end, reason, unit, functionCode }) as const;
  if (unit !== awaited.unit) return unexpected('unit');
  if (functionCode === (awaited.functionCode | EXCEPTION_FLAG)) return { kind: 'exception', start, end, exceptionCode: bytes[start + 2]! };
  if (functionCode !== awaited.functionCode) return unexpected('function');
  if (bytes[start + 2] !== 2 * awaited.count) return unexpected('length');
  return { kind: 'data', start, end, registerBytes: bytes.slice(start + 3, end - 2) };
}

/**
 * Finds the answer to `awaited` in the bytes received so far. The earliest frame with a good CRC wins;
 * past the first place the awaited answer may begin, only frames with the awaited header count, so
 * that bytes inside a half-received answer are never taken for a frame of their own.
 */
export function scanResponse(bytes: Uint8Array, awaited: ReadRequest): ResponseScan {
  let candidate = -1;
  for (let i = 0; i < bytes.length; i += 1) {
    const header = matchesAwaitedHeader(bytes, i, awaited);
    if (candidate >= 0 && header !== 'yes') continue;
    const length = answerLength(bytes, i);
    if (length !== undefined && i + length <= bytes.length && hasValidCrc(bytes, i, i + length)) {
      return classify(bytes, i, i + length, awaited);
    }
    if (header !== 'no' && candidate < 0) candidate = i;
  }
  if (candidate < 0) return { kind: 'incomplete', start: bytes.length };
  const length = answerLength(bytes, candidate);
  const complete = matchesAwaitedHeader(bytes, candidate, awaited) === 'yes' && length !== undefined && candidate + length <= bytes.length;
  return complete ? { kind: 'crc', start: candidate, end: candidate + length } : { kind: 'incomplete', start: candidate };
}

/** What a server finds in the bytes a client sent. */
export type RequestScan =
  | { kind: 'request'; start: number; end: number; request: ReadRequest }
  | { kind: 'other'; start: number; end: number; unit: number; functionCode: number }
  | { kind: 'incomplete'; start: number };

function requestLength(bytes: Uint8Array, i: number): number | undefined {
  const functionCode = bytes[i + 1];
  if (functionCode === undefined) return undefined;
  if (functionCode >= 1 && functionCode <= 6) return 8;
  if (functionCode === 15 || functionCode === 16) {
    const byteCount = bytes[i + 6];
    return byteCount === undefined ? undefined : 9 + byteCount;
  }
  return undefined;
}

/** The first request with a good CRC; `incomplete.start` is where bytes may still become one. */
export function scanRequest(bytes: Uint8Array): RequestScan {
  let firstOpen = bytes.length;
  for (let i = 0; i < bytes.length; i += 1) {
    const length = requestLength(bytes, i);
    const cut = length === undefined ? i + 8 > bytes.length : i + length > bytes.length;
    if (cut) {
      firstOpen = Math.min(firstOpen, i);
      continue;
    }
    if (length === undefined || !hasValidCrc(bytes, i, i + length)) continue;
    const [unit, functionCode] = [bytes[i]!, bytes[i + 1]!];
    if (functionCode !== READ_HOLDING_REGISTERS && functionCode !== READ_INPUT_REGISTERS) {
      return { kind: 'other', start: i, end: i + length, unit, functionCode };
    }
    const address = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    const count = (bytes[i + 4]! << 8) | bytes[i + 5]!;
    return { kind: 'request', start: i, end: i + length, request: { unit, functionCode, address, count } };
  }
  return { kind: 'incomplete', start: firstOpen };
}
