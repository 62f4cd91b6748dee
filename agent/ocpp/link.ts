// The WebSocket to the CSMS: ocpp-rpc's RPCClient with subprotocol ocpp1.6, strict schema validation
// both ways, one outstanding CALL at a time, ping/pong keep-alive, and reconnects with jittered
// exponential backoff. ocpp-rpc reconnects only after a first successful connection, so the first
// connection (and any client that gave up) is retried here with the same kind of backoff.
import { readFile } from 'node:fs/promises';
import ocppRpc, { type RPCClient } from 'ocpp-rpc';
import { LOG_EVENTS } from '../logging/events.js';
import { Backoff } from '../retry/backoff.js';
import type { Logger } from '../logging/logger.js';

export interface LinkOptions {
  url: string;
  identity: string;
  securityProfile: 0 | 1 | 2;
  passwordFile?: string;
  caFile?: string;
  callTimeoutMs: number;
  pingIntervalS: number;
  reconnectMaxMs: number;
  log: Logger;
  /** CSMS → charge point calls, by action. */
  handlers: Record<string, (params: any) => unknown>;
  onOpen: () => void;
  onDown: () => void;
}

const RECONNECT_MIN_MS = 1000;

type ClientOptions = ConstructorParameters<typeof ocppRpc.RPCClient>[0];

/** A CALLERROR answered by the CSMS (or a call our own strict validation refused), as opposed to a lost link. */
export function isCallError(error: unknown): error is Error & { rpcErrorCode: string } {
  return error instanceof Error && typeof (error as { rpcErrorCode?: unknown }).rpcErrorCode === 'string';
}

async function readSetting(setting: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`OCPP_FILE_UNREADABLE: cannot read ${setting} ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}); OCPP stays off`);
  }
}

export class OcppLink {
  private client: RPCClient | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wakeRetry: (() => void) | undefined;
  private downSinceMs: number | undefined = Date.now();
  private open = false;

  constructor(private readonly options: LinkOptions) {}

  get connected(): boolean {
    return this.open;
  }

  async start(): Promise<void> {
    const { securityProfile, passwordFile, caFile } = this.options;
    const password = securityProfile >= 1 && passwordFile ? (await readSetting('ocpp.passwordFile', passwordFile)).replace(/\r?\n$/, '') : undefined;
    const ca = securityProfile === 2 && caFile ? await readSetting('ocpp.caFile', caFile) : undefined;
    this.running = this.run(password, ca);
  }

  call<T = Record<string, unknown>>(action: string, payload: Record<string, unknown>): Promise<T> {
    if (!this.client || !this.open) return Promise.reject(new Error('OCPP_OFFLINE: not connected to the CSMS'));
    return this.client.call(action, payload) as Promise<T>;
  }

  setPingInterval(seconds: number): void {
    this.client?.reconfigure({ pingIntervalMs: seconds * 1000 } as unknown as ClientOptions);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeRetry?.();
    await this.client?.close({ code: 1000, reason: 'charge point stopping', force: false }).catch(() => undefined);
    await this.running;
  }

  private async run(password: string | undefined, ca: string | undefined): Promise<void> {
    const { log, reconnectMaxMs } = this.options;
    const backoff = new Backoff({ initialMs: RECONNECT_MIN_MS, maxMs: reconnectMaxMs });
    while (!this.stopped) {
      const client = this.createClient(password, ca);
      this.client = client;
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      try {
        await client.connect();
        backoff.reset();
        await closed; // ocpp-rpc reconnects by itself until it gives up or is closed
      } catch (error) {
        log.debug(LOG_EVENTS.ocppConnectFailed, { url: this.options.url, attempt: backoff.failures + 1, error: (error as Error).message });
      }
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff.nextDelayMs());
        this.wakeRetry = () => (clearTimeout(timer), resolve());
      });
    }
  }

  private createClient(password: string | undefined, ca: string | undefined): RPCClient {
    const { url, identity, callTimeoutMs, pingIntervalS, reconnectMaxMs, log } = this.options;
    const client = new ocppRpc.RPCClient({
      endpoint: url.replace(/\/+$/, ''),
      identity,
      protocols: ['ocpp1.6'],
      strictMode: true,
      callConcurrency: 1,
      callTimeoutMs,
      pingIntervalMs: pingIntervalS * 1000,
      reconnect: true,
      backoff: { initialDelay: RECONNECT_MIN_MS, maxDelay: reconnectMaxMs, factor: 2, randomisationFactor: 0.5 },
      ...(password !== undefined ? { password } : {}),
      wsOpts: { minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) },
    } as unknown as ClientOptions); // ocpp-rpc's typings require every option; it fills in its defaults
    for (const [action, handler] of Object.entries(this.options.handlers)) client.handle(action, async ({ params }) => handler(params) as Record<string, unknown>);
    client.handle(({ method }) => {
      throw ocppRpc.createRPCError('NotImplemented', `${method} is not implemented by this charge point`);
    });
    client.on('open', () => {
      this.open = true;
      log.notice(LOG_EVENTS.ocppConnected, { url, identity, down_ms: this.downSinceMs === undefined ? 0 : Date.now() - this.downSinceMs });
      this.downSinceMs = undefined;
      this.options.onOpen();
    });
    client.on('disconnect', ({ code, reason }: { code: number; reason: string }) => {
      if (!this.open) return;
      this.open = false;
      this.downSinceMs = Date.now();
      log.warning(LOG_EVENTS.ocppDown, { url, code, reason: String(reason ?? '') });
      this.options.onDown();
    });
    client.on('strictValidationFailure', ({ method, outbound, isCall, error }: { method: string; outbound: boolean; isCall: boolean; error: Error }) => {
      log.err(LOG_EVENTS.ocppInvalidMessage, { action: method, outbound, call: isCall, error: error.message });
    });
    return client;
  }
}
