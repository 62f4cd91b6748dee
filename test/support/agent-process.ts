// The one hardware-in-the-loop harness: starts the real `charger-agent run` process in a fresh
// state directory on free ports, reads its journald-style log lines, talks to it through `ctl`'s
// own client, and always cleans up. Each HIL test is just its body.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { sendLine } from '../../agent/cli/ctl-command.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface LogLine {
  priority: number;
  event: string;
  [field: string]: unknown;
}

export interface StartOptions {
  /** Extra `run` flags. The harness sets --hardware sim, --state-dir, ports 0, brokers off unless given. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse a state directory (restart after a crash). */
  stateDir?: string;
  /** Run dist/agent/cli.js (npm run build first) instead of the TypeScript sources. */
  compiled?: boolean;
  /** A script that stands in for agent/cli.ts (e.g. support/fake-sysfs-agent.ts), run through tsx. */
  script?: string;
  /** How long to wait for agent_ready. */
  readyTimeoutMs?: number;
}

export interface AgentInfo {
  state: string;
  cp_id: string;
  in_service: boolean;
  plugged: boolean;
  session: { id: string; driver: string; kwh: number; importe: number; started_at?: string } | null;
  meter: { import_kwh: number; power_w: number; taken_at: string } | null;
  faults: Array<{ code: string; latched: boolean }>;
  relay: { commanded: 'open' | 'closed'; feedback: 'open' | 'closed' };
}

const running = new Set<AgentProcess>();

export class AgentProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  healthPort = 0;
  httpPort = 0;
  private waiters: Array<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }> = [];

  constructor(
    readonly child: ChildProcess,
    readonly stateDir: string,
    private readonly ownsStateDir: boolean,
  ) {
    running.add(this);
    createInterface({ input: child.stdout! }).on('line', (text) => this.onLine(text));
    createInterface({ input: child.stderr! }).on('line', (text) => this.stderr.push(text));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => running.delete(this));
  }

  get pid(): number {
    return this.child.pid!;
  }

  private onLine(text: string): void {
    const match = /^<(\d)>(\{.*\})$/.exec(text);
    if (!match) return;
    const line = { priority: Number(match[1]), ...(JSON.parse(match[2]!) as { event: string }) } as LogLine;
    this.lines.push(line);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.match(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }

  /** The first line (already seen, or to come) with this event that matches; rejects on exit or timeout. */
  waitFor(event: string, match: (line: LogLine) => boolean = () => true, timeoutMs = 15_000, since = 0): Promise<LogLine> {
    const seen = this.lines.slice(since).find((line) => line.event === event && match(line));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${event}" log line within ${timeoutMs} ms; last lines:\n${this.tail()}`)), timeoutMs);
      const done = (line: LogLine) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({ match: (line) => line.event === event && match(line), resolve: done });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`agent exited (code ${code}, signal ${signal}) before "${event}"; last lines:\n${this.tail()}`));
      });
    });
  }

  tail(count = 15): string {
    return [...this.lines.slice(-count).map((l) => JSON.stringify(l)), ...this.stderr.slice(-5)].join('\n');
  }

  /** Sends one protocol line (or a `ctl` word such as `plug`) and returns the reply. */
  send(line: string): Promise<string> {
    return sendLine('127.0.0.1', this.healthPort, line, 5000);
  }

  async info(): Promise<AgentInfo> {
    return JSON.parse(await this.send('INFO')) as AgentInfo;
  }

  /** Polls INFO until the predicate holds: state lives in the agent, not in its log. */
  async until(predicate: (info: AgentInfo) => boolean, timeoutMs = 15_000, everyMs = 50): Promise<AgentInfo> {
    const deadline = Date.now() + timeoutMs;
    let last: AgentInfo | undefined;
    while (Date.now() < deadline) {
      last = await this.info();
      if (predicate(last)) return last;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    throw new Error(`condition not reached within ${timeoutMs} ms; last INFO ${JSON.stringify(last)}`);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
    if (this.ownsStateDir) rmSync(this.stateDir, { recursive: true, force: true });
  }
}

export function agentCommand(compiled = false): string[] {
  return compiled ? [join(REPO_ROOT, 'dist/agent/cli.js')] : ['--import', 'tsx', join(REPO_ROOT, 'agent/cli.ts')];
}

export async function startAgent(options: StartOptions = {}): Promise<AgentProcess> {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'charger-hil-'));
  const args = [
    ...(options.script ? ['--import', 'tsx', options.script] : agentCommand(options.compiled)),
    'run',
    '--hardware', 'sim',
    '--health-host', '127.0.0.1',
    '--health-port', '0',
    '--http-port', '0',
    '--kafka-brokers', '',
    '--mqtt-url', '',
    '--state-dir', stateDir,
    ...(options.args ?? []),
  ];
  // a clean slate: no CHARGER_* or systemd variables from the caller's shell, unless the test sets them
  const inherited = Object.entries(process.env).filter(([key]) => !key.startsWith('CHARGER_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'].includes(key));
  const env: NodeJS.ProcessEnv = { ...Object.fromEntries(inherited), ...options.env };
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const agent = new AgentProcess(child, stateDir, options.stateDir === undefined);
  const ready = await agent.waitFor('agent_ready', () => true, options.readyTimeoutMs ?? 20_000);
  agent.healthPort = Number(String(ready.health).split(':').pop());
  agent.httpPort = ready.http ? Number(String(ready.http).split(':').pop()) : 0;
  return agent;
}

/** Kills every agent a test started; call from after(). */
export async function stopAllAgents(): Promise<void> {
  await Promise.all([...running].map((agent) => agent.stop()));
}
