import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { crc16Modbus, hasValidCrc, withCrc } from './crc16.js';

const ascii = (text: string) => new TextEncoder().encode(text);
const hex = (text: string) => Uint8Array.from(text.split(' ').map((b) => parseInt(b, 16)));

test('the CRC-16/MODBUS check value of "123456789" is 0x4B37', () => {
  assert.equal(crc16Modbus(ascii('123456789')), 0x4b37);
});

test('a read of the SDM voltage register ends in 71 CB, low byte first', () => {
  assert.deepEqual(withCrc(hex('01 04 00 00 00 02')), hex('01 04 00 00 00 02 71 cb'));
});

test('the textbook holding-register read 01 03 00 00 00 01 ends in 84 0A', () => {
  assert.deepEqual(withCrc(hex('01 03 00 00 00 01')), hex('01 03 00 00 00 01 84 0a'));
});

test('a single flipped bit breaks the CRC', () => {
  const frame = hex('01 04 00 00 00 02 71 cb');
  assert.ok(hasValidCrc(frame, 0, frame.length));
  frame[3] = frame[3]! ^ 0x10;
  assert.ok(!hasValidCrc(frame, 0, frame.length));
});

test('the CRC of a slice ignores the bytes around it', () => {
  const framed = hex('ff ee 01 04 00 00 00 02 71 cb 55');
  assert.ok(hasValidCrc(framed, 2, 10));
});
