import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  buildExceptionResponse,
  buildReadRequest,
  buildReadResponse,
  READ_INPUT_REGISTERS,
  scanRequest,
  scanResponse,
  type ReadRequest,
} from './rtu-frame.js';

const hex = (text: string) => Uint8Array.from(text.split(' ').map((b) => parseInt(b, 16)));
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));

const awaited: ReadRequest = { unit: 1, functionCode: READ_INPUT_REGISTERS, address: 0, count: 2 };
// 230.0 V as float32 big-endian: 43 66 00 00
const voltageAnswer = buildReadResponse(1, READ_INPUT_REGISTERS, hex('43 66 00 00'));

test('a read-input-registers request is unit, 0x04, address, count, CRC', () => {
  const request = buildReadRequest({ unit: 1, functionCode: READ_INPUT_REGISTERS, address: 0x0048, count: 4 });
  assert.deepEqual([...request.subarray(0, 6)], [0x01, 0x04, 0x00, 0x48, 0x00, 0x04]);
  assert.deepEqual(buildReadRequest(awaited), hex('01 04 00 00 00 02 71 cb'));
});

test('a clean answer yields its register bytes', () => {
  const scan = scanResponse(voltageAnswer, awaited);
  assert.equal(scan.kind, 'data');
  assert.deepEqual(scan.kind === 'data' && [...scan.registerBytes], [0x43, 0x66, 0x00, 0x00]);
  assert.equal(scan.kind === 'data' && scan.end, voltageAnswer.length);
});

test('noise before and after the answer is skipped, and its length reported', () => {
  const stream = concat(hex('00 ff 13 01 37'), voltageAnswer, hex('aa 55'));
  const scan = scanResponse(stream, awaited);
  assert.equal(scan.kind, 'data');
  assert.equal(scan.start, 5);
  assert.equal(scan.kind === 'data' && scan.end, 5 + voltageAnswer.length);
});

test('an answer split across chunks waits for its tail at every cut', () => {
  for (let cut = 1; cut < voltageAnswer.length; cut += 1) {
    const scan = scanResponse(voltageAnswer.subarray(0, cut), awaited);
    assert.deepEqual(scan, { kind: 'incomplete', start: 0 }, `cut after ${cut} bytes`);
  }
});

test('noise followed by the head of the answer keeps the head and drops the noise', () => {
  const scan = scanResponse(concat(hex('22 33'), voltageAnswer.subarray(0, 4)), awaited);
  assert.deepEqual(scan, { kind: 'incomplete', start: 2 });
});

test('bytes that cannot begin the answer are all noise', () => {
  assert.deepEqual(scanResponse(hex('22 33 44 55'), awaited), { kind: 'incomplete', start: 4 });
});

test('a complete answer with a broken CRC is a CRC error', () => {
  const broken = voltageAnswer.slice();
  broken[broken.length - 1] = broken[broken.length - 1]! ^ 0xff;
  assert.deepEqual(scanResponse(broken, awaited), { kind: 'crc', start: 0, end: broken.length });
});

test('a broken copy followed by a good one resyncs on the good one', () => {
  const broken = voltageAnswer.slice();
  broken[4] = broken[4]! ^ 0x01;
  const scan = scanResponse(concat(broken, voltageAnswer), awaited);
  assert.equal(scan.kind, 'data');
  assert.equal(scan.start, broken.length);
});

test('a look-alike header in the noise does not hide the answer behind it', () => {
  // "01 04 04" announces a 9-byte frame that the real answer's first bytes would complete wrongly.
  const scan = scanResponse(concat(hex('01 04 04'), voltageAnswer), awaited);
  assert.equal(scan.kind, 'data');
  assert.equal(scan.start, 3);
});

test('an exception answer 0x84 carries its code', () => {
  const scan = scanResponse(concat(hex('fe'), buildExceptionResponse(1, READ_INPUT_REGISTERS, 2)), awaited);
  assert.equal(scan.kind, 'exception');
  assert.equal(scan.kind === 'exception' && scan.exceptionCode, 2);
  assert.equal(scan.start, 1);
});

test('an answer from another unit is classified, not taken', () => {
  const scan = scanResponse(buildReadResponse(7, READ_INPUT_REGISTERS, hex('43 66 00 00')), awaited);
  assert.equal(scan.kind, 'unexpected');
  assert.equal(scan.kind === 'unexpected' && scan.reason, 'unit');
  assert.equal(scan.kind === 'unexpected' && scan.unit, 7);
});

test('an answer to another function is classified, not taken', () => {
  const scan = scanResponse(buildReadResponse(1, 0x03, hex('43 66 00 00')), awaited);
  assert.equal(scan.kind === 'unexpected' && scan.reason, 'function');
});

test('an answer with another register count is classified, not taken', () => {
  const scan = scanResponse(buildReadResponse(1, READ_INPUT_REGISTERS, hex('43 66 00 00 00 00 00 00')), awaited);
  assert.equal(scan.kind === 'unexpected' && scan.reason, 'length');
});

test('a server finds a request behind noise and waits for a cut one', () => {
  const request = buildReadRequest({ unit: 1, functionCode: READ_INPUT_REGISTERS, address: 0x34, count: 24 });
  const scan = scanRequest(concat(hex('00 99'), request));
  assert.equal(scan.kind, 'request');
  assert.deepEqual(scan.kind === 'request' && scan.request, { unit: 1, functionCode: 4, address: 0x34, count: 24 });
  assert.equal(scan.start, 2);
  assert.deepEqual(scanRequest(request.subarray(0, 5)), { kind: 'incomplete', start: 0 });
});

test('a server reports a request for another function so it can refuse it', () => {
  const write = buildReadRequest({ unit: 1, functionCode: 0x06, address: 1, count: 2 });
  const scan = scanRequest(write);
  assert.equal(scan.kind, 'other');
  assert.equal(scan.kind === 'other' && scan.functionCode, 6);
});
