// sd_notify for a Type=notify unit: READY=1, STATUS=, STOPPING=1 and the WATCHDOG=1 keep-alive.
// An optional platform feature that fails soft (zigbee2mqtt's sd-notify.ts): without NOTIFY_SOCKET
// every call is a no-op; a message that cannot be sent costs one log line, and the daemon runs on.
// Unlike a bare timer, the watchdog pings only while liveness() says the parts that matter are
// alive, so a wedged meter worker or relay supervision gets the process killed and restarted.
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import { createSystemdNotifySender, NotifyError, type NotifySender } from './notify-sender.js';

export interface Liveness {
  ok: boolean;
  /** The parts that stopped beating, named in the watchdog_stalled line. */
  stalled?: string[];
}

export interface NotifierOptions {
  log: Logger;
  /** Default process.env. Read by start(): NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID. */
  env?: NodeJS.ProcessEnv;
  /** Asked before each watchdog ping; default: always alive. */
  liveness?: () => Liveness;
  /** Default: runs systemd-notify (see notify-sender.ts). */
  send?: NotifySender;
  /** Our PID, sent as MAINPID= with READY=1. Default process.pid. */
  pid?: number;
}

export interface Notifier {
  /** Reads the environment; without NOTIFY_SOCKET the notifier stays a no-op. */
  start(): void;
  /** READY=1 (and STATUS=), and from now on the watchdog pings. */
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  /** STOPPING=1. Pings continue (a clean shutdown may stop the parts liveness() watches). */
  stopping(status?: string): Promise<void>;
  /** Stops pinging and waits for the messages in flight. */
  stop(): Promise<void>;
  /** Whether start() found a NOTIFY_SOCKET. */
  readonly enabled: boolean;
  /** WATCHDOG_USEC / 2 in ms, when systemd asked for a watchdog. */
  readonly watchdogIntervalMs: number | undefined;
}

const MAX_STATUS_CHARS = 200;

/** STATUS= is one line of the message: newlines would start new fields. */
export function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS_CHARS)}`;
}

/** WATCHDOG_USEC / 2 in ms, or undefined when there is no watchdog for this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  // WATCHDOG_PID names the process the watchdog is for; a child that inherited the env is not it.
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

export function createNotifier(options: NotifierOptions): Notifier {
  return new SdNotifier(options);
}

class SdNotifier implements Notifier {
  private socketPath: string | undefined;
  private intervalMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pingPending = false;
  private stalledLogged = false;
  private failing = false;
  private disabled = false;
  private shuttingDown = false;
  private lastStatus: string | undefined;
  private pendingStatus: string | undefined;
  private statusQueued: Promise<void> | undefined;
  private readonly send: NotifySender;
  private readonly pid: number;

  constructor(private readonly options: NotifierOptions) {
    this.send = options.send ?? createSystemdNotifySender();
    this.pid = options.pid ?? process.pid;
  }

  get enabled(): boolean {
    return this.socketPath !== undefined && !this.disabled;
  }

  get watchdogIntervalMs(): number | undefined {
    return this.intervalMs;
  }

  start(): void {
    const env = this.options.env ?? process.env;
    const socket = env.NOTIFY_SOCKET?.trim();
    if (!socket) return;
    this.socketPath = socket;
    this.intervalMs = watchdogIntervalMs(env, this.pid);
  }

  async ready(status?: string): Promise<void> {
    const sent = this.enqueue(['READY=1', ...this.statusLines(status)], { mainPid: this.pid });
    this.armWatchdog();
    await sent;
  }

  /**
   * Sends STATUS= when the text changed, so callers may call it on every tick. While PID 1 has not
   * taken a status yet, a newer one replaces it instead of queueing behind it.
   */
  status(text: string): Promise<void> {
    const [line] = this.statusLines(text);
    if (line === undefined) return this.statusQueued ?? Promise.resolve();
    this.pendingStatus = line;
    this.statusQueued ??= this.enqueue(() => {
      const latest = this.pendingStatus;
      this.pendingStatus = undefined;
      this.statusQueued = undefined;
      return latest !== undefined ? [latest] : [];
    });
    return this.statusQueued;
  }

  stopping(status?: string): Promise<void> {
    this.shuttingDown = true;
    return this.enqueue(['STOPPING=1', ...this.statusLines(status)]);
  }

  private statusLines(text: string | undefined): string[] {
    if (text === undefined) return [];
    const line = statusLine(text);
    if (line === this.lastStatus) return [];
    this.lastStatus = line;
    return [line];
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue;
  }

  private armWatchdog(): void {
    if (!this.enabled || this.intervalMs === undefined || this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    // The keep-alive must never be what keeps the process running.
    this.timer.unref();
  }

  private tick(): void {
    if (!this.enabled) return;
    // During shutdown the watched parts stop on purpose; TimeoutStopSec bounds a hung shutdown.
    const alive = this.shuttingDown ? { ok: true } : this.liveness();
    if (!alive.ok) {
      if (!this.stalledLogged) {
        this.stalledLogged = true;
        this.options.log.err(LOG_EVENTS.watchdogStalled, {
          stalled: alive.stalled ?? [],
          watchdog_ms: this.intervalMs! * 2,
          action: 'pings stopped: systemd restarts the agent unless the parts recover',
        });
      }
      return;
    }
    if (this.stalledLogged) {
      this.stalledLogged = false;
      this.options.log.notice(LOG_EVENTS.watchdogResumed, {});
    }
    // A ping still waiting for PID 1 covers this tick too: never queue pings behind each other.
    if (this.pingPending) return;
    this.pingPending = true;
    void this.enqueue(['WATCHDOG=1']).finally(() => {
      this.pingPending = false;
    });
  }

  private liveness(): Liveness {
    try {
      return this.options.liveness?.() ?? { ok: true };
    } catch (error) {
      return { ok: false, stalled: [`liveness check threw: ${(error as Error).message}`] };
    }
  }

  /** Messages go out one at a time, in order: STOPPING=1 never overtakes READY=1. */
  private enqueue(message: string[] | (() => string[]), sendOptions?: { mainPid?: number }): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const socket = this.socketPath!;
    this.queue = this.queue.then(() => {
      const lines = typeof message === 'function' ? message() : message;
      return this.disabled || lines.length === 0 ? undefined : this.deliver(socket, lines, sendOptions);
    });
    return this.queue;
  }

  private async deliver(socket: string, lines: string[], sendOptions?: { mainPid?: number }): Promise<void> {
    try {
      await this.send(socket, lines, sendOptions);
      this.failing = false;
    } catch (error) {
      const missing = error instanceof NotifyError && error.code === 'SD_NOTIFY_MISSING';
      if (missing) this.disabled = true;
      // One line per failure streak, not one per ping.
      if (this.failing) return;
      this.failing = true;
      this.options.log.warning(LOG_EVENTS.sdNotifyFailed, {
        socket,
        message: lines[0],
        error: (error as Error).message,
        effect: missing
          ? 'sd_notify disabled: systemd will not see READY or watchdog pings'
          : 'systemd may not see this message; with WatchdogSec it restarts the agent if pings keep failing',
      });
    }
  }
}
