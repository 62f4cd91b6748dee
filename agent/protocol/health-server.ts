// The TCP health and command port. Line based (\n, \r\n accepted), one or many requests per
// connection. Defences: lines over 256 bytes are refused and the connection closed, idle
// connections time out, a client that does not read its replies is cut off, and at the connection
// cap the connection idle the longest is evicted so a new client (the Monitor) is always served.
import { BlockList, createServer, isIPv4, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../logging/logger.js';
import { LOG_EVENTS } from '../logging/events.js';
import { MAX_LINE_BYTES, REPLY, changesState, parseRequest, type Request } from './commands.js';

export interface HealthServerOptions {
  host: string;
  port: number;
  allowedPeers: string[];
  maxConnections: number;
  idleTimeoutMs: number;
  /** Answers one request; must not throw (a throw answers NACK#INTERNAL_ERROR). */
  handle: (request: Request, peer: string) => string;
  log: Logger;
  /** Unsent reply bytes above which a client that does not read is disconnected. */
  maxPendingReplyBytes?: number;
  /** Told about every connection the server drops on purpose. */
  onDrop?: (reason: DropReason) => void;
}

export type DropReason = 'slow_reader' | 'line_too_long' | 'evicted' | 'idle';

interface Client {
  socket: Socket;
  lastActivityMs: number;
  pending: Buffer;
}

export function peerAllowList(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

/** ::ffff:127.0.0.1 (an IPv4 peer on a dual-stack socket) is checked as 127.0.0.1. */
export function normalizePeer(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export class HealthServer {
  private server: Server | undefined;
  private readonly clients = new Set<Client>();
  private readonly allowed: BlockList;
  private evictions = 0;

  constructor(private readonly options: HealthServerOptions) {
    this.allowed = peerAllowList(options.allowedPeers);
  }

  async start(): Promise<AddressInfo> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.host, port: this.options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.options.log.err('health_server_error', { error }));
    return server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.socket.destroy();
    this.clients.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get connectionCount(): number {
    return this.clients.size;
  }

  private accept(socket: Socket): void {
    if (this.clients.size >= this.options.maxConnections) this.evictIdlest();
    const client: Client = { socket, lastActivityMs: Date.now(), pending: Buffer.alloc(0) };
    this.clients.add(client);
    socket.setTimeout(this.options.idleTimeoutMs);
    socket.on('timeout', () => {
      socket.destroy();
      this.options.onDrop?.('idle');
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.clients.delete(client));
    socket.on('data', (chunk: Buffer) => this.receive(client, chunk));
  }

  private evictIdlest(): void {
    let idlest: Client | undefined;
    for (const client of this.clients) if (!idlest || client.lastActivityMs < idlest.lastActivityMs) idlest = client;
    if (!idlest) return;
    this.clients.delete(idlest);
    idlest.socket.destroy();
    this.options.onDrop?.('evicted');
    this.evictions += 1;
    if (isPowerOfTwo(this.evictions)) {
      this.options.log.warning(LOG_EVENTS.healthClientRejected, { reason: 'connection_cap', evictions: this.evictions, cap: this.options.maxConnections });
    }
  }

  private receive(client: Client, chunk: Buffer): void {
    client.lastActivityMs = Date.now();
    let buffer = client.pending.length > 0 ? Buffer.concat([client.pending, chunk]) : chunk;
    let newline: number;
    while ((newline = buffer.indexOf(0x0a)) !== -1) {
      if (newline > MAX_LINE_BYTES) return this.refuseLongLine(client);
      const line = buffer.subarray(0, newline).toString('utf8').replace(/\r$/, '');
      buffer = buffer.subarray(newline + 1);
      if (!this.reply(client, this.answer(line, client.socket))) return;
    }
    if (buffer.length > MAX_LINE_BYTES) return this.refuseLongLine(client);
    client.pending = Buffer.from(buffer);
  }

  private answer(line: string, socket: Socket): string {
    const request = parseRequest(line);
    const peer = normalizePeer(socket.remoteAddress);
    if (changesState(request) && !this.allowed.check(peer, isIPv4(peer) ? 'ipv4' : 'ipv6')) {
      this.options.log.warning(LOG_EVENTS.commandRejected, { reason: 'forbidden_peer', peer, command: request.kind });
      return REPLY.forbidden(request);
    }
    try {
      return this.options.handle(request, peer);
    } catch (error) {
      this.options.log.err(LOG_EVENTS.unhandledError, { where: 'health_command', error });
      return REPLY.internalError;
    }
  }

  /** Writes a reply; false when the client was cut off for not reading its replies. */
  private reply(client: Client, text: string): boolean {
    const { socket } = client;
    if (socket.destroyed) return false;
    socket.write(text + '\n');
    if (socket.writableLength > (this.options.maxPendingReplyBytes ?? 64 * 1024)) {
      socket.destroy();
      this.options.onDrop?.('slow_reader');
      return false;
    }
    return true;
  }

  private refuseLongLine(client: Client): void {
    client.pending = Buffer.alloc(0);
    client.socket.end(REPLY.lineTooLong + '\n');
    client.socket.removeAllListeners('data');
    this.options.onDrop?.('line_too_long');
  }
}

function isPowerOfTwo(n: number): boolean {
  return (n & (n - 1)) === 0;
}
