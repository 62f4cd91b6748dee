import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import type { Request } from './commands.js';
import { HealthServer, normalizePeer } from './health-server.js';

/** A client that collects reply lines and resolves them in order. */
class LineClient {
  readonly socket: Socket;
  private buffer = '';
  private readonly lines: string[] = [];
  private waiters: Array<(line: string) => void> = [];
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        const waiter = this.waiters.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
    this.socket.on('error', () => {});
    this.closed = once(this.socket, 'close').then(() => {});
  }

  async connected(): Promise<void> {
    if (!this.socket.connecting) return;
    await once(this.socket, 'connect');
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async ask(text: string): Promise<string> {
    this.socket.write(text);
    return this.next();
  }
}

function handler(request: Request): string {
  switch (request.kind) {
    case 'status':
      return 'OK';
    case 'stop':
      return 'ACK#PARAR';
    case 'info':
      throw new Error('boom');
    default:
      return 'NACK#UNKNOWN_COMMAND';
  }
}

describe('TCP health server', () => {
  const log = createMemoryLogger();
  let server: HealthServer;
  let port: number;

  before(async () => {
    server = new HealthServer({ host: '127.0.0.1', port: 0, allowedPeers: ['127.0.0.0/8'], maxConnections: 64, idleTimeoutMs: 5000, handle: handler, log });
    port = (await server.start()).port;
  });
  after(() => server.stop());

  it('answers one request per connection', async () => {
    const client = new LineClient(port);
    assert.equal(await client.ask('STATUS?\n'), 'OK');
    client.socket.end();
  });

  it('answers several requests on one connection, with \\n or \\r\\n', async () => {
    const client = new LineClient(port);
    client.socket.write('STATUS?\nHEALTH_CHECK\r\nPARAR\r\n');
    assert.deepEqual([await client.next(), await client.next(), await client.next()], ['OK', 'OK', 'ACK#PARAR']);
    client.socket.end();
  });

  it('assembles a line sent in pieces', async () => {
    const client = new LineClient(port);
    await client.connected();
    client.socket.write('STA');
    client.socket.write('TUS');
    const reply = client.next();
    client.socket.write('?\n');
    assert.equal(await reply, 'OK');
    client.socket.end();
  });

  it('answers anything unknown with NACK#UNKNOWN_COMMAND and keeps the connection', async () => {
    const client = new LineClient(port);
    assert.equal(await client.ask('HELLO\n'), 'NACK#UNKNOWN_COMMAND');
    assert.equal(await client.ask('STATUS?\n'), 'OK');
    client.socket.end();
  });

  it('answers NACK#INTERNAL_ERROR when the handler throws, and keeps serving', async () => {
    const client = new LineClient(port);
    assert.equal(await client.ask('INFO\n'), 'NACK#INTERNAL_ERROR');
    assert.equal(await client.ask('STATUS?\n'), 'OK');
    client.socket.end();
  });

  it('refuses a line over 256 bytes with NACK#LINE_TOO_LONG and closes', async () => {
    const client = new LineClient(port);
    assert.equal(await client.ask('A'.repeat(300) + '\n'), 'NACK#LINE_TOO_LONG');
    await client.closed;
  });

  it('accepts a line of exactly 256 bytes', async () => {
    const client = new LineClient(port);
    assert.equal(await client.ask('X'.repeat(256) + '\n'), 'NACK#UNKNOWN_COMMAND');
    client.socket.end();
  });

  it('refuses a line of 257 bytes, one over the limit, and closes', async () => {
    const client = new LineClient(port);
    assert.equal(await client.ask('X'.repeat(257) + '\n'), 'NACK#LINE_TOO_LONG');
    await client.closed;
  });

  // A server that buffered a line without end would never answer: these tests fail on their own
  // timeout rather than hold the run until the global one.
  it('refuses 1 MiB without a newline and closes, without buffering it', { timeout: 10_000 }, async () => {
    const client = new LineClient(port);
    client.socket.write(Buffer.alloc(1024 * 1024, 0x41));
    assert.equal(await client.next(), 'NACK#LINE_TOO_LONG');
    await client.closed;
  });

  it('refuses 257 bytes without a newline as soon as they arrive, but waits for the rest of 256', { timeout: 10_000 }, async () => {
    const patient = new LineClient(port);
    await patient.connected();
    patient.socket.write('X'.repeat(256));
    const hasty = new LineClient(port);
    hasty.socket.write('X'.repeat(257));
    assert.equal(await hasty.next(), 'NACK#LINE_TOO_LONG');
    await hasty.closed;
    // the 256 bytes were kept: the line they start is answered once its newline comes
    assert.equal(await patient.ask('\n'), 'NACK#UNKNOWN_COMMAND');
    patient.socket.end();
  });

  it('survives random bytes and still answers the next client', async () => {
    let seed = 7;
    const random = Buffer.alloc(64 * 1024);
    for (let i = 0; i < random.length; i++) random[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    const noisy = new LineClient(port);
    noisy.socket.write(random);
    noisy.socket.end();
    await noisy.closed;
    const client = new LineClient(port);
    assert.equal(await client.ask('STATUS?\n'), 'OK');
    client.socket.end();
  });

  it('cuts off a client that never reads its replies, and keeps serving others', async () => {
    let dropped!: (reason: string) => void;
    const drop = new Promise<string>((resolve) => (dropped = resolve));
    const chatty = new HealthServer({
      host: '127.0.0.1', port: 0, allowedPeers: ['127.0.0.0/8'], maxConnections: 8, idleTimeoutMs: 60_000,
      handle: () => 'OK'.padEnd(250, '.'), log, onDrop: (reason) => dropped(reason),
    });
    const chattyPort = (await chatty.start()).port;
    try {
      const greedy = connect({ host: '127.0.0.1', port: chattyPort });
      greedy.on('error', () => {});
      greedy.pause(); // never reads: 100k replies of 250 bytes overflow every kernel buffer
      greedy.write(Buffer.from('STATUS?\n'.repeat(100_000)));
      assert.equal(await drop, 'slow_reader');
      greedy.destroy();
      const client = new LineClient(chattyPort);
      assert.equal((await client.ask('STATUS?\n')).slice(0, 2), 'OK');
      client.socket.end();
    } finally {
      await chatty.stop();
    }
  });

  it('names its peers without the IPv4-mapped prefix', () => {
    assert.equal(normalizePeer('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizePeer('::1'), '::1');
  });
});

describe('TCP health server limits', () => {
  it('with 500 idle connections open, a new client is still answered (the idlest are evicted)', async () => {
    const log = createMemoryLogger();
    const server = new HealthServer({ host: '127.0.0.1', port: 0, allowedPeers: ['127.0.0.0/8'], maxConnections: 64, idleTimeoutMs: 60_000, handle: handler, log });
    const { port } = await server.start();
    try {
      const idle: LineClient[] = [];
      for (let i = 0; i < 500; i++) idle.push(new LineClient(port));
      await Promise.all(idle.map((c) => c.connected()));
      const client = new LineClient(port);
      assert.equal(await client.ask('STATUS?\n'), 'OK');
      assert.ok(server.connectionCount <= 64, `connections ${server.connectionCount}`);
      assert.ok(log.lines.some((l) => l.event === 'health_client_rejected'));
      client.socket.end();
      for (const c of idle) c.socket.destroy();
    } finally {
      await server.stop();
    }
  });

  it('closes idle connections after the idle timeout', async () => {
    let dropped!: (reason: string) => void;
    const drop = new Promise<string>((resolve) => (dropped = resolve));
    const server = new HealthServer({
      host: '127.0.0.1', port: 0, allowedPeers: ['127.0.0.0/8'], maxConnections: 8, idleTimeoutMs: 100,
      handle: handler, log: createMemoryLogger(), onDrop: (reason) => dropped(reason),
    });
    const { port } = await server.start();
    try {
      const client = new LineClient(port);
      assert.equal(await client.ask('STATUS?\n'), 'OK');
      assert.equal(await drop, 'idle');
      await client.closed;
    } finally {
      await server.stop();
    }
  });

  it('refuses state-changing commands from peers outside the allow list, but answers STATUS?', async () => {
    const log = createMemoryLogger();
    const server = new HealthServer({ host: '127.0.0.1', port: 0, allowedPeers: ['10.0.0.0/8'], maxConnections: 8, idleTimeoutMs: 5000, handle: handler, log });
    const { port } = await server.start();
    try {
      const client = new LineClient(port);
      assert.equal(await client.ask('PARAR\n'), 'NACK#PARAR#FORBIDDEN');
      assert.equal(await client.ask('STATUS?\n'), 'OK');
      assert.ok(log.lines.some((l) => l.event === 'command_rejected' && l.fields.peer === '127.0.0.1'));
      client.socket.end();
    } finally {
      await server.stop();
    }
  });
});
