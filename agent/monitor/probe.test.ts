import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { probeEngine, type ProbeOptions } from './probe.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();

after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A TCP server on a free loopback port; `onLine` answers each request line (or not). */
async function engine(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function answering(answer: string): (socket: Socket) => void {
  return (socket) => {
    socket.once('data', (data) => {
      assert.equal(data.toString(), 'STATUS?\n');
      socket.end(answer);
    });
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const options = (port: number, extra: Partial<ProbeOptions> = {}): ProbeOptions => ({
  host: '127.0.0.1',
  port,
  connectTimeoutMs: 1000,
  readTimeoutMs: 200,
  ...extra,
});

describe('probe', () => {
  it('an engine answering OK is OK', async () => {
    const port = await engine(answering('OK\n'));
    assert.deepEqual(await probeEngine(options(port)), { status: 'OK', engineResponse: 'OK' });
  });

  it('an engine answering KO is KO', async () => {
    const port = await engine(answering('KO\r\n'));
    assert.deepEqual(await probeEngine(options(port)), { status: 'KO', engineResponse: 'KO' });
  });

  it('an answer with fields after # keeps its verdict and the whole line', async () => {
    const port = await engine(answering('OK#Charging\n'));
    assert.deepEqual(await probeEngine(options(port)), { status: 'OK', engineResponse: 'OK#Charging' });
  });

  it('an unexpected answer is a KO that keeps what was said', async () => {
    const port = await engine(answering('HELLO\n'));
    const result = await probeEngine(options(port));
    assert.equal(result.status, 'KO');
    assert.equal(result.engineResponse, 'HELLO');
    assert.match(result.detail ?? '', /unexpected answer "HELLO"/);
  });

  it('an engine that accepts but never answers is a TIMEOUT after the read timeout', async () => {
    let accepted = 0;
    const port = await engine(() => void (accepted += 1));
    const result = await probeEngine(options(port));
    assert.equal(result.status, 'TIMEOUT');
    assert.equal(result.engineResponse, null);
    assert.match(result.detail ?? '', /no answer from 127\.0\.0\.1:\d+ within 200 ms/);
    assert.equal(accepted, 1);
  });

  it('a closed port is a CONNECTION_ERROR naming the refusal', async () => {
    const result = await probeEngine(options(await closedPort()));
    assert.equal(result.status, 'CONNECTION_ERROR');
    assert.match(result.detail ?? '', /connect ECONNREFUSED/);
  });

  it('a connection reset by the engine is a CONNECTION_ERROR', async () => {
    const port = await engine((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const result = await probeEngine(options(port));
    assert.equal(result.status, 'CONNECTION_ERROR');
    assert.match(result.detail ?? '', /ECONNRESET/);
  });

  it('an engine that hangs up without answering is a CONNECTION_ERROR', async () => {
    const port = await engine((socket) => socket.once('data', () => socket.end()));
    const result = await probeEngine(options(port));
    assert.equal(result.status, 'CONNECTION_ERROR');
    assert.match(result.detail ?? '', /closed the connection without answering/);
  });

  it('an endless answer without a newline is cut off as a KO', async () => {
    const port = await engine((socket) => socket.once('data', () => socket.write('x'.repeat(1000))));
    const result = await probeEngine(options(port));
    assert.equal(result.status, 'KO');
    assert.match(result.detail ?? '', /longer than 256 bytes/);
  });

  it('aborting settles a hanging probe at once', async () => {
    const port = await engine(() => {});
    const controller = new AbortController();
    const pending = probeEngine(options(port, { readTimeoutMs: 60_000, connectTimeoutMs: 60_000, signal: controller.signal }));
    controller.abort();
    assert.deepEqual(await pending, { status: 'CONNECTION_ERROR', engineResponse: null, detail: 'aborted' });
  });
});
