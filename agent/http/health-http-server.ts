// HTTP on the agent for operators and Prometheus: GET /health (JSON, 200 ok/degraded, 503 fault)
// and GET /metrics (Prometheus text). Read-only, loopback by default, and bounded: small headers,
// no bodies, short deadlines, few connections, so a scraper or a scanner cannot tie the agent up.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { AgentSnapshot } from '../snapshot.js';
import { assessHealth, httpStatusFor } from './health-status.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';

export interface HealthHttpServerOptions {
  host: string;
  /** 0 picks a free port (tests); the controller does not start the server when config.http.port is 0. */
  port: number;
  snapshot: () => AgentSnapshot;
  log: Logger;
}

/** Request limits: a health check or a scrape needs none of these to be larger. */
export const HTTP_LIMITS = {
  maxHeaderBytes: 4096,
  maxBodyBytes: 4096,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  maxConnections: 32,
} as const;

const ROUTES = new Set(['/health', '/metrics']);
const ALLOW = 'GET, HEAD';

export class HealthHttpServer {
  private server: Server | undefined;
  private readonly metrics: AgentMetrics;
  private readonly sockets = new Set<Socket>();
  private snapshotFailing = false;

  constructor(private readonly options: HealthHttpServerOptions) {
    this.metrics = createAgentMetrics(options.snapshot);
  }

  async start(): Promise<void> {
    const server = createServer(
      {
        maxHeaderSize: HTTP_LIMITS.maxHeaderBytes,
        headersTimeout: HTTP_LIMITS.headersTimeoutMs,
        requestTimeout: HTTP_LIMITS.requestTimeoutMs,
        keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
        connectionsCheckingInterval: 1000,
      },
      (req, res) => {
        this.handle(req, res).catch((error: unknown) => {
          this.options.log.debug('http_request_failed', { error });
          res.destroy();
        });
      },
    );
    server.maxConnections = HTTP_LIMITS.maxConnections;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.clientError(error, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { port } = this.address()!;
    this.options.log.info('http_listening', { host: this.options.host, port, paths: [...ROUTES] });
  }

  /** Stops accepting, ends idle keep-alive connections, and cuts the rest after a short grace. */
  async stop(graceMs = 1000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const cut = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(cut);
  }

  address(): { host: string; port: number } | undefined {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return address ? { host: address.address, port: address.port } : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('cache-control', 'no-store');
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!ROUTES.has(path)) return this.finishRequest(req, res, 404, { error: 'not_found', paths: [...ROUTES] });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', ALLOW);
      return this.finishRequest(req, res, 405, { error: 'method_not_allowed', allow: ALLOW });
    }
    if (!(await this.readNoBody(req, res))) return;
    try {
      if (path === '/health') await this.health(req, res);
      else await this.metricsPage(req, res);
      this.snapshotFailing = false;
    } catch (error) {
      // Log the first failure of a streak, not one line per scrape.
      if (!this.snapshotFailing) this.options.log.err('http_handler_failed', { path, error });
      this.snapshotFailing = true;
      if (!res.headersSent) send(req, res, 500, 'application/json', JSON.stringify({ error: 'internal_error' }));
    }
  }

  private async health(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const snapshot = this.options.snapshot();
    const { status, reasons } = assessHealth(snapshot);
    send(req, res, httpStatusFor(status), 'application/json', JSON.stringify(healthBody(snapshot, status, reasons)));
  }

  private async metricsPage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.metrics.render();
    send(req, res, 200, this.metrics.contentType, body);
  }

  /** Answers after the request body is drained (bounded), so the connection stays usable. */
  private async finishRequest(req: IncomingMessage, res: ServerResponse, status: number, body: object): Promise<void> {
    if (await this.readNoBody(req, res)) send(req, res, status, 'application/json', JSON.stringify(body));
  }

  /** GET and HEAD carry no body; a few KiB are tolerated and discarded, more is a 413 and a closed connection. */
  private async readNoBody(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > HTTP_LIMITS.maxBodyBytes) return this.tooLarge(req, res);
    let received = 0;
    for await (const chunk of req) {
      received += (chunk as Buffer).length;
      if (received > HTTP_LIMITS.maxBodyBytes) return this.tooLarge(req, res);
    }
    return true;
  }

  private tooLarge(req: IncomingMessage, res: ServerResponse): false {
    const socket = req.socket;
    res.setHeader('connection', 'close');
    res.on('finish', () => socket.destroySoon());
    send(req, res, 413, 'application/json', JSON.stringify({ error: 'payload_too_large', max_bytes: HTTP_LIMITS.maxBodyBytes }));
    return false;
  }

  /** Node answers oversized headers (431) and timeouts (408) itself when it can; we make sure the socket goes. */
  private clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (socket.writable && !socket.writableEnded) {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    socket.destroySoon();
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The /health document: snake_case fields, like the messages the central system reads. */
export function healthBody(s: AgentSnapshot, status: string, reasons: string[]): Record<string, unknown> {
  const { kafka, mqtt, outbox, store } = s.telemetry;
  return {
    status,
    reasons,
    cp_id: s.cpId,
    version: s.version,
    uptime_seconds: Math.floor(s.uptimeSeconds),
    state: s.state,
    in_service: s.inService,
    plugged: s.plugged,
    relay: { commanded_closed: s.relay.commandedClosed, feedback_closed: s.relay.feedbackClosed },
    session: s.session ? { id: s.session.id, driver_id: s.session.driverId, kwh: s.session.kwh, importe: s.session.importe, started_at: s.session.startedAt } : null,
    meter: {
      success_rate: s.meter.successRate,
      qos_class: s.meter.qosClass,
      connected: s.meter.connected,
      reads: s.meter.reads,
      errors: s.meter.errors,
      errors_by_kind: s.meter.errorsByKind,
      last_good_reading: s.meter.lastGoodReadingMs === undefined ? null : new Date(s.meter.lastGoodReadingMs).toISOString(),
    },
    kafka: link(kafka),
    mqtt: link(mqtt),
    outbox: { depth: outbox.depth, oldest_age_ms: outbox.oldestAgeMs, bytes: outbox.bytes, dropped_consumo: outbox.droppedConsumo },
    store: { state: store.state, pending: store.pending, oldest_pending_age_ms: store.oldestPendingAgeMs, write_failures: store.writeFailures },
    faults: s.faults.map((f) => ({ code: f.code, since: new Date(f.sinceMs).toISOString(), latched: f.latched, detail: f.detail })),
    health_checks: { ok: s.healthChecks.ok, ko: s.healthChecks.ko },
  };
}

function link(status: { enabled: boolean; connected: boolean; lastError?: string }): Record<string, unknown> {
  return { enabled: status.enabled, connected: status.connected, last_error: status.lastError ?? null };
}

/**
 * What the controller calls: starts the server on config.http, or returns undefined when
 * config.http.port is 0 (HTTP off). A port in use rejects with HTTP_LISTEN_FAILED.
 */
export async function startHealthHttpServer(
  http: Config['http'],
  deps: { snapshot: () => AgentSnapshot; log: Logger },
): Promise<HealthHttpServer | undefined> {
  if (http.port === 0) {
    deps.log.info('http_disabled', { reason: 'http.port is 0' });
    return undefined;
  }
  const server = new HealthHttpServer({ host: http.host, port: http.port, ...deps });
  try {
    await server.start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    throw new Error(`HTTP_LISTEN_FAILED: cannot listen on ${http.host}:${http.port} for /health and /metrics (${code})`, { cause: error });
  }
  return server;
}
