// A small OCPP 1.6J CSMS for development and tests, on ocpp-rpc's server in strict mode: every call
// and every answer is validated against the official 1.6 JSON schemas. It accepts every charge point,
// answers Accepted (unless told otherwise), numbers transactions, and keeps what it received in order.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import ocppRpc, { type RPCServer } from 'ocpp-rpc';

type Client = Parameters<Parameters<RPCServer['on']>[1]>[0] & { identity: string; call: (action: string, params?: unknown) => Promise<any> };

export interface CsmsMessage {
  identity: string;
  action: string;
  params: Record<string, any>;
  atMs: number;
}

export interface DevCsmsOptions {
  /** Security profile 1: the password every charge point must present (any identity). */
  password?: string;
  /** Security profile 2: serve wss:// with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  onMessage?: (message: CsmsMessage) => void;
  onConnect?: (identity: string) => void;
  onValidationFailure?: (failure: { identity: string; action: string; error: string }) => void;
}

const CP_ACTIONS = ['BootNotification', 'Heartbeat', 'StatusNotification', 'Authorize', 'StartTransaction', 'StopTransaction', 'MeterValues', 'DataTransfer', 'DiagnosticsStatusNotification', 'FirmwareStatusNotification'];

export class DevCsms {
  readonly received: CsmsMessage[] = [];
  readonly validationFailures: Array<{ identity: string; action: string; error: string }> = [];
  bootStatus: 'Accepted' | 'Pending' | 'Rejected' = 'Accepted';
  bootIntervalS = 300;
  readonly blockedIdTags = new Set<string>();
  private nextTransactionId = 1;
  private server: RPCServer | undefined;
  private https: HttpsServer | undefined;
  /** Upgrades refused for bad credentials. */
  rejectedLogins = 0;
  private clients = new Map<string, Client>();
  private waiters: Array<{ match: (m: CsmsMessage) => boolean; resolve: (m: CsmsMessage) => void }> = [];
  port = 0;

  constructor(private readonly options: DevCsmsOptions = {}) {}

  /** Listens on host:port (0 = any free port, or the port of the previous listen). */
  async listen(port = this.port, host = '127.0.0.1'): Promise<number> {
    const server = new ocppRpc.RPCServer({ protocols: ['ocpp1.6'], strictMode: true, callTimeoutMs: 10_000 } as unknown as ConstructorParameters<typeof ocppRpc.RPCServer>[0]);
    server.auth((accept, reject, handshake) => {
      if (this.options.password !== undefined && handshake.password?.toString('utf8') !== this.options.password) {
        this.rejectedLogins += 1;
        return reject(401, 'bad credentials');
      }
      accept({});
    });
    server.on('client', (client: Client) => this.attach(client));
    this.server = server;
    if (this.options.tls) {
      const https = createHttpsServer({ ...this.options.tls, minVersion: 'TLSv1.2' });
      https.on('upgrade', server.handleUpgrade);
      await new Promise<void>((resolve, reject) => https.once('error', reject).listen(port, host, () => resolve()));
      this.https = https;
      this.port = (https.address() as AddressInfo).port;
    } else {
      this.port = ((await server.listen(port, host)).address() as AddressInfo).port;
    }
    return this.port;
  }

  /**
   * Stops listening and closes every connection. `graceful` answers the calls in flight first, as a CSMS
   * that is shut down does; otherwise the connections drop at once, as a crashed CSMS's would (a call
   * it had received but not answered is then sent again by the charge point: at-least-once).
   */
  async close(graceful = false): Promise<void> {
    const server = this.server;
    const https = this.https;
    this.server = undefined;
    this.https = undefined;
    this.clients.clear();
    await server?.close(graceful ? { awaitPending: true, code: 1001, reason: 'CSMS stopping' } : { force: true });
    if (https) await new Promise((resolve) => https.close(resolve));
  }

  /** The last transaction id handed out, if any. */
  get lastTransactionId(): number | undefined {
    return this.nextTransactionId > 1 ? this.nextTransactionId - 1 : undefined;
  }

  connected(identity?: string): boolean {
    return identity ? this.clients.has(identity) : this.clients.size > 0;
  }

  /** A call to a connected charge point (the only one when identity is omitted). */
  call(action: string, params: Record<string, unknown> = {}, identity?: string): Promise<any> {
    const client = identity ? this.clients.get(identity) : [...this.clients.values()].at(-1);
    if (!client) return Promise.reject(new Error(`no charge point ${identity ?? ''} connected`));
    return client.call(action, params);
  }

  /** The first message (already received, or to come) of this action that matches. */
  waitFor(action: string, match: (m: CsmsMessage) => boolean = () => true, timeoutMs = 15_000, since = 0): Promise<CsmsMessage> {
    const seen = this.received.slice(since).find((m) => m.action === action && match(m));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const tail = this.received.slice(-8).map((m) => `${m.action} ${JSON.stringify(m.params)}`).join('\n');
        reject(new Error(`no ${action} within ${timeoutMs} ms; last received:\n${tail}`));
      }, timeoutMs);
      this.waiters.push({
        match: (m) => m.action === action && match(m),
        resolve: (m) => (clearTimeout(timer), resolve(m)),
      });
    });
  }

  private attach(client: Client): void {
    const identity = client.identity;
    this.clients.set(identity, client);
    this.options.onConnect?.(identity);
    client.on('close', () => {
      if (this.clients.get(identity) === client) this.clients.delete(identity);
    });
    client.on('strictValidationFailure', ({ method, error }: { method: string; error: Error }) => {
      const failure = { identity, action: method, error: error.message };
      this.validationFailures.push(failure);
      this.options.onValidationFailure?.(failure);
    });
    for (const action of CP_ACTIONS) client.handle(action, async ({ params }: { params: Record<string, any> }) => this.answer(identity, action, params));
  }

  private answer(identity: string, action: string, params: Record<string, any>): Record<string, unknown> {
    const message = { identity, action, params, atMs: Date.now() };
    this.received.push(message);
    this.options.onMessage?.(message);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.match(message)) return true;
      waiter.resolve(message);
      return false;
    });
    const now = new Date().toISOString();
    const idTagInfo = (idTag: string) => ({ status: this.blockedIdTags.has(idTag) ? 'Blocked' : 'Accepted' });
    switch (action) {
      case 'BootNotification':
        return { status: this.bootStatus, interval: this.bootIntervalS, currentTime: now };
      case 'Heartbeat':
        return { currentTime: now };
      case 'Authorize':
        return { idTagInfo: idTagInfo(params.idTag) };
      case 'StartTransaction':
        return { transactionId: this.nextTransactionId++, idTagInfo: idTagInfo(params.idTag) };
      case 'StopTransaction':
        return params.idTag ? { idTagInfo: idTagInfo(params.idTag) } : {};
      case 'DataTransfer':
        return { status: 'UnknownVendorId' };
      default:
        return {};
    }
  }
}
