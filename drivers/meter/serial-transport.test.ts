import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DriverError } from '../types.js';
import { openError, SerialPortTransport } from './serial-transport.js';

test('a missing device says to check the adapter and meter.path', () => {
  const error = openError('/dev/ttyUSB0', new Error('Error: No such file or directory, cannot open /dev/ttyUSB0'));
  assert.equal(error.code, 'METER_PORT_MISSING');
  assert.match(error.message, /\/dev\/ttyUSB0 does not exist: check that the RS-485 adapter is plugged in/);
});

test('a permission error says to join the dialout group', () => {
  const error = openError('/dev/ttyUSB0', new Error('Error: Permission denied, cannot open /dev/ttyUSB0'));
  assert.equal(error.code, 'METER_PORT_ACCESS');
  assert.match(error.message, /dialout/);
  assert.equal(openError('/dev/ttyAMA0', Object.assign(new Error('open failed'), { code: 'EACCES' })).code, 'METER_PORT_ACCESS');
});

test('a locked port names the tool that finds the other user', () => {
  const error = openError('/dev/ttyUSB0', new Error('Error Resource temporarily unavailable Cannot lock port'));
  assert.equal(error.code, 'METER_PORT_BUSY');
  assert.match(error.message, /fuser -v \/dev\/ttyUSB0/);
});

test('opening a path that does not exist rejects with METER_PORT_MISSING', async () => {
  const transport = new SerialPortTransport({ path: '/nonexistent/ttyUSB7', baud: 9600, parity: 'none', stopBits: 1 });
  await assert.rejects(transport.open(), (error: unknown) => error instanceof DriverError && error.code === 'METER_PORT_MISSING');
  assert.equal(transport.isOpen, false);
  await transport.close();
});

test('writing to a closed port is an io error, not a crash', async () => {
  const transport = new SerialPortTransport({ path: '/nonexistent/ttyUSB7', baud: 9600, parity: 'none', stopBits: 1 });
  await assert.rejects(transport.write(Uint8Array.of(1)), (error: unknown) => error instanceof DriverError && error.fields.kind === 'io');
});
