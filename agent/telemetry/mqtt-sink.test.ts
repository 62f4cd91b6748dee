// The MQTT link's reconnect period, against loopback TCP servers that play a broker just enough:
// one that drops every connection at once, one that answers CONNECT and QoS 1 PUBLISH (mqtt.js says
// `connect` only once the publishes it kept from the last connection are acknowledged) and then drops.
// What a real Mosquitto receives is in test/telemetry-mqtt.test.ts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { configSchema } from '../config/schema.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { createMqttSink } from './mqtt-sink.js';
import type { MqttSink } from './types.js';

const CP = 'CP-MQTT-UNIT';
/** MQTT 3.1.1 CONNACK: session not present, connection accepted. */
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const CONNECT = 1;
const PUBLISH = 3;
const PUBACK = 0x40;

/** Answers CONNECT with CONNACK and each QoS 1 PUBLISH with its PUBACK; ignores the rest. */
function answerLikeABroker(socket: Socket): void {
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      let length = 0;
      let offset = 1;
      for (let shift = 0; ; shift += 7) {
        if (offset >= buffer.length) return;
        const byte = buffer[offset++]!;
        length += (byte & 0x7f) << shift;
        if ((byte & 0x80) === 0) break;
      }
      if (buffer.length < offset + length) return;
      const type = buffer[0]! >> 4;
      const qos = (buffer[0]! >> 1) & 3;
      if (type === CONNECT) socket.write(CONNACK);
      if (type === PUBLISH && qos === 1) {
        const idAt = offset + 2 + buffer.readUInt16BE(offset);
        socket.write(Buffer.from([PUBACK, 0x02, buffer[idAt]!, buffer[idAt + 1]!]));
      }
      buffer = buffer.subarray(offset + length);
    }
  });
}

interface FakeBroker {
  url: string;
  connections: number;
  server: Server;
}

async function fakeBroker(onSocket: (socket: Socket) => void): Promise<FakeBroker> {
  const broker = { url: '', connections: 0, server: createServer() };
  broker.server.on('connection', (socket) => {
    broker.connections += 1;
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  broker.server.listen(0, '127.0.0.1');
  await once(broker.server, 'listening');
  broker.url = `mqtt://127.0.0.1:${(broker.server.address() as AddressInfo).port}`;
  return broker;
}

/** Numbers handed out in turn, the last one repeated. */
function sequence(...values: number[]): () => number {
  let next = 0;
  return () => values[Math.min(next++, values.length - 1)]!;
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('MQTT link reconnects', () => {
  const cleanups: Array<() => unknown> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  function sink(url: string, random: () => number) {
    const { mqtt } = configSchema.parse({ cpId: CP, stateDir: '/nonexistent', mqtt: { url } });
    const log = createMemoryLogger();
    const link: MqttSink = createMqttSink(mqtt, CP, log, { random });
    cleanups.push(() => link.stop(100));
    return { link, log };
  }

  it('retries a broker that refuses at a period drawn from [1 s, 5 s), so charge points that lost it together do not come back in lockstep', async () => {
    const brokers = [await fakeBroker((socket) => socket.destroy()), await fakeBroker((socket) => socket.destroy())];
    for (const broker of brokers) cleanups.push(() => broker.server.close());
    const first = sink(brokers[0]!.url, () => 0);
    const second = sink(brokers[1]!.url, () => 0.5);
    await first.link.start();
    await second.link.start();
    await until('a second try at each broker', () => brokers.every((broker) => broker.connections >= 2));
    const down = (log: typeof first.log) => log.lines.find((line) => line.event === 'mqtt_down');
    assert.equal(down(first.log)?.fields.retry_every_ms, 1_000);
    assert.equal(down(second.log)?.fields.retry_every_ms, 3_000);
    assert.equal(first.link.status().connected, false);
  });

  it('draws a new period for each outage, at the connect before it', async () => {
    const broker = await fakeBroker((socket) => {
      answerLikeABroker(socket);
      setTimeout(() => socket.destroy(), 300);
    });
    cleanups.push(() => broker.server.close());
    // 0 → 1 s, set at the start and not used (the first connect succeeds); 0.75 → 4 s for the outage
    // after the first connection; 0.25 → 2 s for the one after the second.
    const { link, log } = sink(broker.url, sequence(0, 0.75, 0.25));
    await link.start();
    const downs = () => log.lines.filter((line) => line.event === 'mqtt_down');
    await until('two connections, each dropped', () => downs().length >= 2);
    assert.deepEqual(downs().slice(0, 2).map((line) => line.fields.retry_every_ms), [4_000, 2_000]);
    assert.ok(log.lines.some((line) => line.event === 'mqtt_up'), 'connected in between');
  });
});
