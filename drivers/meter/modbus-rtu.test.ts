import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DriverError } from '../types.js';
import { ManualClock } from './testing/manual-clock.js';
import { createTransportPair, type MemoryTransport } from './testing/memory-transport.js';
import { bitsPerChar, interFrameSilenceMs, ModbusRtuClient } from './modbus-rtu.js';
import { buildReadResponse, READ_INPUT_REGISTERS, scanRequest } from './rtu-frame.js';

const hex = (text: string) => Uint8Array.from(text.split(' ').map((b) => parseInt(b, 16)));
const answer = buildReadResponse(1, READ_INPUT_REGISTERS, hex('43 66 00 00'));

/** A scripted server: each request gets the next scripted reply (bytes sent as given chunks, or nothing). */
async function scripted(replies: Array<Uint8Array[] | 'nothing'>, options: { retries?: number } = {}) {
  const [clientSide, serverSide] = createTransportPair();
  const clock = new ManualClock(1_000);
  await serverSide.open();
  serverSide.onData((bytes) => {
    if (scanRequest(bytes).kind !== 'request') return;
    const reply = replies.shift();
    if (reply && reply !== 'nothing') for (const chunk of reply) serverSide.write(chunk);
  });
  const client = new ModbusRtuClient({ transport: clientSide, baud: 9600, timeoutMs: 500, retries: options.retries ?? 0, clock });
  await client.open();
  return { client, clock, clientSide, serverSide };
}

async function settleWith<T>(clock: ManualClock, promise: Promise<T>, maxMs = 5_000): Promise<T | DriverError> {
  let outcome: { value: T } | { error: unknown } | undefined;
  promise.then((value) => (outcome = { value }), (error: unknown) => (outcome = { error }));
  await clock.advanceUntil(() => outcome !== undefined, maxMs, 1);
  if ('error' in outcome!) {
    assert.ok(outcome.error instanceof DriverError, String(outcome.error));
    return outcome.error;
  }
  return outcome!.value;
}

const asError = (value: unknown): DriverError => {
  assert.ok(value instanceof DriverError, `expected a DriverError, got ${String(value)}`);
  return value;
};

test('the inter-frame silence is 3.5 characters, and 1.75 ms above 19200 baud', () => {
  assert.equal(interFrameSilenceMs(9600, 10), 3.5 * 10 * 1000 / 9600);
  assert.equal(interFrameSilenceMs(9600, bitsPerChar('even', 1)), 3.5 * 11 * 1000 / 9600);
  assert.equal(interFrameSilenceMs(115_200), 1.75);
  assert.equal(bitsPerChar('none', 2), 11);
});

test('an answer resolves with the register bytes', async () => {
  const { client, clock } = await scripted([[answer]]);
  assert.deepEqual([...((await settleWith(clock, client.readInputRegisters(1, 0, 2))) as Uint8Array)], [0x43, 0x66, 0, 0]);
  assert.equal(client.stats().answers, 1);
});

test('an answer arriving in pieces with noise in front is put together', async () => {
  const { client, clock } = await scripted([[hex('00 7f'), answer.subarray(0, 3), answer.subarray(3, 6), answer.subarray(6)]]);
  const bytes = await settleWith(clock, client.readInputRegisters(1, 0, 2));
  assert.ok(bytes instanceof Uint8Array);
  assert.deepEqual(client.stats(), { requests: 1, attempts: 1, answers: 1, resyncs: 1, noiseBytes: 2, errors: { crc: 0, timeout: 0, exception: 0, garbage: 0, partial: 0, io: 0, unexpected: 0 } });
});

test('no answer is a timeout that names the unit, the port and the time', async () => {
  const { client, clock } = await scripted(['nothing', 'nothing', 'nothing'], { retries: 2 });
  const error = asError(await settleWith(clock, client.readInputRegisters(1, 0, 2)));
  assert.equal(error.message, 'METER_TIMEOUT: no answer from unit 1 on memory:a within 500 ms (after 3 attempts)');
  assert.equal(error.fields.kind, 'timeout');
  assert.equal(client.stats().errors.timeout, 3);
});

test('a failed attempt is retried and the retry can succeed', async () => {
  const broken = answer.slice();
  broken[5] = broken[5]! ^ 0x01;
  const { client, clock } = await scripted([[broken], [answer]], { retries: 1 });
  assert.ok((await settleWith(clock, client.readInputRegisters(1, 0, 2))) instanceof Uint8Array);
  assert.equal(client.stats().errors.crc, 1);
  assert.equal(client.stats().attempts, 2);
});

test('the head of an answer without its tail is a partial frame', async () => {
  const { client, clock } = await scripted([[answer.subarray(0, 5)]]);
  const error = asError(await settleWith(clock, client.readInputRegisters(1, 0, 2)));
  assert.equal(error.code, 'METER_PARTIAL_FRAME');
  assert.match(error.message, /sent 5 of 9 bytes/);
  assert.equal(client.stats().errors.partial, 1);
});

test('bytes that are no frame at all are garbage, with a hint about the line settings', async () => {
  const { client, clock } = await scripted([[hex('ff 00 ff 00 55')]]);
  const error = asError(await settleWith(clock, client.readInputRegisters(1, 0, 2)));
  assert.equal(error.code, 'METER_GARBAGE');
  assert.match(error.message, /baud rate, parity/);
  assert.equal(client.stats().errors.garbage, 1);
});

test('an answer from another unit is an unexpected frame', async () => {
  const { client, clock } = await scripted([[buildReadResponse(2, READ_INPUT_REGISTERS, hex('43 66 00 00'))]]);
  const error = asError(await settleWith(clock, client.readInputRegisters(1, 0, 2)));
  assert.equal(error.code, 'METER_UNEXPECTED_FRAME');
  assert.equal(error.fields.reason, 'unit');
});

test('only one request is on the bus at a time', async () => {
  const { client, clock, clientSide } = await scripted(['nothing', [answer]]);
  const first = client.readInputRegisters(1, 0, 2).catch((error: unknown) => error);
  const second = client.readInputRegisters(1, 0, 2);
  await clock.advance(0);
  assert.equal(clientSide.writes.length, 1, 'the second request waits for the first to end');
  await clock.advanceUntil(() => clientSide.writes.length === 2, 2_000, 1);
  assert.equal((asError(await first)).code, 'METER_TIMEOUT');
  assert.ok((await settleWith(clock, second)) instanceof Uint8Array);
});

test('a request waits for 3.5 quiet characters after the last byte on the line', async () => {
  const { client, clock, clientSide, serverSide } = await scripted([[answer], [answer]]);
  await settleWith(clock, client.readInputRegisters(1, 0, 2));
  serverSide.write(hex('00')); // a stray byte just before the next request
  await clock.advance(0);
  const next = client.readInputRegisters(1, 0, 2);
  await clock.advance(0);
  assert.equal(clientSide.writes.length, 1, 'still within the silence');
  await clock.advance(Math.ceil(interFrameSilenceMs(9600)));
  assert.equal(clientSide.writes.length, 2);
  assert.ok((await settleWith(clock, next)) instanceof Uint8Array);
});

test('losing the port during a request fails it at once, without retries', async () => {
  const { client, clock, clientSide } = await scripted(['nothing'], { retries: 2 });
  const pending = client.readInputRegisters(1, 0, 2).catch((error: unknown) => error);
  await clock.advance(1);
  (clientSide as MemoryTransport).lose(new Error('device disconnected'));
  const error = asError(await pending);
  assert.equal(error.code, 'METER_IO');
  assert.match(error.message, /the port was lost: device disconnected/);
  assert.equal(client.stats().attempts, 1);
});

test('a port that cannot open rejects open() with its own error', async () => {
  const [clientSide] = createTransportPair();
  clientSide.openError = new DriverError('METER_PORT_MISSING', '/dev/ttyUSB9 does not exist');
  const client = new ModbusRtuClient({ transport: clientSide, baud: 9600, timeoutMs: 500, retries: 0 });
  await assert.rejects(client.open(), /METER_PORT_MISSING/);
});
