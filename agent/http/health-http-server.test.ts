import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import type { AgentSnapshot } from '../snapshot.js';
import { HealthHttpServer, HTTP_LIMITS, startHealthHttpServer } from './health-http-server.js';
import { assertPromtoolClean } from './testing/promtool-check.js';
import { healthySnapshot } from './testing/snapshot-fixture.js';

let snapshot: () => AgentSnapshot = () => healthySnapshot();
const log = createMemoryLogger();
const server = new HealthHttpServer({ host: '127.0.0.1', port: 0, snapshot: () => snapshot(), log });
let base = '';
let port = 0;

before(async () => {
  await server.start();
  port = server.address()!.port;
  base = `http://127.0.0.1:${port}`;
});
after(() => server.stop());

/** Sends raw bytes and returns everything the server wrote before closing (or the first response). */
async function raw(request: string | Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {}); // the server may reset a connection it refuses
  await once(socket, 'connect');
  socket.write(request);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  await once(socket, 'close');
  return text;
}

describe('HTTP /health', () => {
  it('answers 200 with status ok and the agent at a glance', async () => {
    snapshot = () => healthySnapshot();
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as Record<string, any>;
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.reasons, []);
    assert.equal(body.cp_id, 'CP-001');
    assert.equal(body.version, '0.1.0');
    assert.equal(body.state, 'Charging');
    assert.equal(body.uptime_seconds, 3600);
    assert.deepEqual(body.meter.success_rate, 0.99);
    assert.equal(body.meter.qos_class, 'healthy');
    assert.deepEqual(body.kafka, { enabled: true, connected: true, last_error: null });
    assert.deepEqual(body.outbox, { depth: 2, oldest_age_ms: 800, bytes: 512, dropped_consumo: 0 });
    assert.deepEqual(body.faults, []);
    assert.deepEqual(body.health_checks, { ok: 42, ko: 1 });
  });

  it('answers 200 with status degraded and why, when Kafka is disconnected', async () => {
    const healthy = healthySnapshot();
    snapshot = () => healthySnapshot({ telemetry: { ...healthy.telemetry, kafka: { enabled: true, connected: false, lastError: 'ECONNREFUSED' } } });
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, any>;
    assert.equal(body.status, 'degraded');
    assert.deepEqual(body.reasons, ['kafka disconnected']);
    assert.equal(body.kafka.last_error, 'ECONNREFUSED');
  });

  it('answers 503 with status fault and the faults, when a fault is active', async () => {
    const since = Date.UTC(2025, 0, 1, 12, 0, 0);
    snapshot = () => healthySnapshot({ state: 'Faulted', faults: [{ code: 'relay_welded', sinceMs: since, latched: true, detail: 'feedback closed, relay open' }] });
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as Record<string, any>;
    assert.equal(body.status, 'fault');
    assert.deepEqual(body.faults, [{ code: 'relay_welded', since: '2025-01-01T12:00:00.000Z', latched: true, detail: 'feedback closed, relay open' }]);
  });

  it('answers HEAD with the headers and no body', async () => {
    snapshot = () => healthySnapshot();
    const res = await fetch(`${base}/health`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers.get('content-length')) > 0);
    assert.equal(await res.text(), '');
  });

  it('ignores a query string', async () => {
    snapshot = () => healthySnapshot();
    assert.equal((await fetch(`${base}/health?verbose=1`)).status, 200);
  });

  it('answers 500 without crashing when the snapshot fails, and logs it once', async () => {
    snapshot = () => {
      throw new Error('controller not ready');
    };
    assert.equal((await fetch(`${base}/health`)).status, 500);
    assert.equal((await fetch(`${base}/health`)).status, 500);
    assert.equal(log.lines.filter((l) => l.event === 'http_handler_failed').length, 1);
    snapshot = () => healthySnapshot();
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });
});

describe('HTTP /metrics', () => {
  it('serves Prometheus text that passes promtool check metrics', async (t) => {
    snapshot = () => healthySnapshot();
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^charger_charging_state\{state="Charging"\} 1$/m);
    assert.match(text, /^charger_health_checks_total\{result="ok"\} 42$/m);
    await assertPromtoolClean(t, text);
  });

  it('serves metrics for a faulted agent too (200: the scrape itself worked)', async () => {
    snapshot = () => healthySnapshot({ state: 'Faulted', faults: [{ code: 'emergency_stop', sinceMs: 1, latched: false }] });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^charger_fault_active\{code="emergency_stop"\} 1$/m);
  });
});

describe('HTTP limits', () => {
  it('answers 404 for an unknown path', async () => {
    const res = await fetch(`${base}/admin`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'not_found', paths: ['/health', '/metrics'] });
  });

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    it(`answers 405 with Allow to ${method} /health`, async () => {
      const res = await fetch(`${base}/health`, { method, body: method === 'DELETE' ? undefined : '{}' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
    });
  }

  it('refuses a declared body larger than a few KiB with 413 and closes the connection', async () => {
    const response = await raw(`POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: ${HTTP_LIMITS.maxBodyBytes + 1}\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 413 /);
    assert.match(response, /connection: close/i);
  });

  it('refuses a chunked body that grows beyond the limit with 413', async () => {
    const chunk = 'a'.repeat(1024);
    const chunks = Array.from({ length: 6 }, () => `400\r\n${chunk}\r\n`).join('');
    const response = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 413 /);
  });

  it('refuses headers larger than a few KiB with 431', async () => {
    const response = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(HTTP_LIMITS.maxHeaderBytes + 100)}\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 431 /);
  });

  it('answers a malformed request with 400', async () => {
    assert.match(await raw('NONSENSE\r\n\r\n'), /^HTTP\/1\.1 400 /);
  });

  it('sets deadlines for headers and whole requests', () => {
    assert.ok(HTTP_LIMITS.headersTimeoutMs <= 10_000 && HTTP_LIMITS.requestTimeoutMs <= 30_000);
  });
});

describe('starting from the config', () => {
  it('port 0 in config.http means HTTP off: nothing listens', async () => {
    const startLog = createMemoryLogger();
    const started = await startHealthHttpServer({ host: '127.0.0.1', port: 0 }, { snapshot: () => healthySnapshot(), log: startLog });
    assert.equal(started, undefined);
    assert.ok(startLog.lines.some((l) => l.event === 'http_disabled'));
  });

  it('a port in use fails with a code and the address', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const busy = (blocker.address() as AddressInfo).port;
    try {
      await assert.rejects(
        startHealthHttpServer({ host: '127.0.0.1', port: busy }, { snapshot: () => healthySnapshot(), log: createMemoryLogger() }),
        new RegExp(`^Error: HTTP_LISTEN_FAILED: cannot listen on 127\\.0\\.0\\.1:${busy} .*EADDRINUSE`),
      );
    } finally {
      blocker.close();
    }
  });

  it('starts on the configured port and stops cleanly with a keep-alive client connected', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const free = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const started = await startHealthHttpServer({ host: '127.0.0.1', port: free }, { snapshot: () => healthySnapshot(), log: createMemoryLogger() });
    assert.ok(started);
    assert.equal(started.address()?.port, free);
    assert.equal((await fetch(`http://127.0.0.1:${free}/health`)).status, 200);
    await started.stop();
    await assert.rejects(fetch(`http://127.0.0.1:${free}/health`));
  });
});
