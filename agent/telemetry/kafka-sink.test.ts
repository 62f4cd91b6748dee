import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { configSchema } from '../config/schema.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { createKafkaSink, kafkaSinkInternals } from './kafka-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'charger-kafka-sink-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 's3cr3t-Pa55';

function kafkaSettings(kafka: Record<string, unknown>) {
  return configSchema.parse({ stateDir: dir, kafka }).kafka;
}

/** A "broker" on loopback that accepts connections and never answers: the wedged case. */
async function blackHole(): Promise<{ address: string; server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { address: `127.0.0.1:${port}`, server, sockets };
}

describe('kafka sink', () => {
  it('bounds a send to a broker that never answers, reports the link down, and recreates the producer once, not at every failure', async () => {
    const hole = await blackHole();
    const log = createMemoryLogger();
    // Half-way through its first step: the next recreation is 15 s away, whatever Math.random would say.
    const sink = createKafkaSink(kafkaSettings({ brokers: [hole.address], sendTimeoutMs: 300 }), log, { random: () => 0.5 });
    await sink.start();
    await assert.rejects(sink.send('cp_telemetry', [{ key: 'CP', value: '{}' }]), /KAFKA_SEND_TIMEOUT/);
    await assert.rejects(sink.send('cp_telemetry', [{ key: 'CP', value: '{}' }]), /KAFKA_SEND_TIMEOUT/);
    const status = sink.status();
    assert.equal(status.enabled, true);
    assert.equal(status.connected, false);
    assert.match(status.lastError ?? '', /KAFKA_SEND_TIMEOUT/);
    const recreated = log.lines.filter((line) => line.event === 'kafka_producer_recreated');
    assert.equal(recreated.length, 1, 'a second recreation waits for its backoff');
    assert.equal(recreated[0]?.fields.reason, 'send_timeout');
    assert.equal(recreated[0]?.fields.next_after_ms, 15_000, 'the wait is drawn from the first step, 30 s');
    assert.equal(log.lines.filter((line) => line.event === 'kafka_down').length, 1);
    assert.ok(hole.sockets.length >= 1, 'it did connect to the loopback broker');
    await sink.stop();
    for (const socket of hole.sockets) socket.destroy();
    hole.server.close();
  });

  it('reads the SASL password from its file (without the trailing newline) and never logs it', async () => {
    const passwordFile = join(dir, 'kafka-password');
    writeFileSync(passwordFile, `${SECRET}\n`);
    const log = createMemoryLogger();
    for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
      const config = kafkaSinkInternals.buildClientConfig(
        kafkaSettings({ brokers: ['127.0.0.1:9'], sasl: { mechanism, username: 'cp', passwordFile } }),
        log,
      );
      assert.deepEqual(config.sasl, { mechanism, username: 'cp', password: SECRET });
    }
    const hole = await blackHole();
    const sink = createKafkaSink(kafkaSettings({ brokers: [hole.address], sendTimeoutMs: 200, sasl: { mechanism: 'plain', username: 'cp', passwordFile } }), log);
    await sink.start();
    await assert.rejects(sink.send('t', [{ key: 'k', value: 'v' }]));
    await sink.stop();
    for (const socket of hole.sockets) socket.destroy();
    hole.server.close();
    assert.ok(log.lines.length > 0);
    assert.ok(!JSON.stringify(log.lines).includes(SECRET), 'the password appears in no log line');
  });

  it('names the setting, never the secret, when the SASL or TLS configuration is incomplete', () => {
    const log = createMemoryLogger();
    assert.throws(
      () => kafkaSinkInternals.buildClientConfig(kafkaSettings({ brokers: ['b:9092'], sasl: { mechanism: 'plain', passwordFile: '/nonexistent' } }), log),
      /KAFKA_CONFIG_INVALID: kafka\.sasl\.username is required/,
    );
    assert.throws(
      () => kafkaSinkInternals.buildClientConfig(kafkaSettings({ brokers: ['b:9092'], sasl: { mechanism: 'scram-sha-512', username: 'u', passwordFile: join(dir, 'missing') } }), log),
      /KAFKA_CONFIG_INVALID: cannot read kafka\.sasl\.passwordFile .*missing: ENOENT/,
    );
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n');
    const tls = kafkaSinkInternals.buildClientConfig(kafkaSettings({ brokers: ['b:9093'], tls: { enabled: true, caFile, rejectUnauthorized: true } }), log);
    assert.ok(tls.ssl && typeof tls.ssl === 'object');
    assert.equal(String((tls.ssl.ca as Buffer[])[0]), '-----BEGIN CERTIFICATE-----\n');
    assert.equal(tls.ssl.rejectUnauthorized, true);
    const plain = kafkaSinkInternals.buildClientConfig(kafkaSettings({ brokers: ['b:9092'] }), log);
    assert.equal(plain.ssl, undefined);
    assert.equal(plain.sasl, undefined);
  });
});
