// The meter half of the hardware-in-the-loop rig: a socat pty pair and `charger-agent meter-sim`
// as its own process with a control port, both ended when the test ends. A real meter outlives the
// agent, and so does this one: a test can kill the agent and keep the meter's register.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { REPO_ROOT, agentCommand } from './agent-process.js';

const SOCAT_MISSING = spawnSync('socat', ['-V']).error !== undefined;
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
/** Skip reason outside CI when socat is missing; with CI=true the suites run and fail loudly. */
export const skipWithoutSocat: string | false = SOCAT_MISSING && !IN_CI ? 'socat is not installed (apt-get install socat)' : false;

export interface PtyPair {
  /** The agent's end. */
  agentPath: string;
  /** The meter's end. */
  meterPath: string;
}

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'meter-daemon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Ends a child process, SIGKILL if SIGTERM is not enough within 3 s. */
export async function endProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** A deadline-bounded wait for a condition of the file system (socat makes its links asynchronously). */
export async function pollUntil(what: string, condition: () => boolean, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** socat with two linked ptys in dir; killed when the test ends. */
export async function startSocat(t: TestContext, dir: string): Promise<PtyPair> {
  assert.ok(!SOCAT_MISSING, 'socat is required for the meter HIL tests (CI=true): apt-get install socat');
  const pair = { agentPath: join(dir, 'agent'), meterPath: join(dir, 'meter') };
  const socat = spawn('socat', [`pty,raw,echo=0,link=${pair.agentPath}`, `pty,raw,echo=0,link=${pair.meterPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => endProcess(socat));
  let stderr = '';
  socat.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await pollUntil(`socat pty links ${pair.agentPath} and ${pair.meterPath} (${stderr})`, () => existsSync(pair.agentPath) && existsSync(pair.meterPath), 10_000, socat);
  return pair;
}

export interface SimTruthLine {
  atMs: number;
  values: { importKwh: number; powerW: number };
  behaviour: { powerW: number; silent: boolean };
  stats: { requests: number; intact: number; dropped: number };
  served: Array<{ atMs: number; intact: boolean; tags: string[]; request: { functionCode: number; address: number; count: number }; values: { importKwh: number } }>;
}

export interface MeterSimProcess {
  child: ChildProcess;
  controlPort: number;
  /** Sends one control line; resolves with the reply line. */
  control(line: string): Promise<string>;
  truth(): Promise<SimTruthLine>;
}

/** `charger-agent meter-sim` on path as its own process, with a control port; ended when the test ends. */
export async function startMeterSim(t: TestContext, path: string, extraArgs: string[] = []): Promise<MeterSimProcess> {
  const args = [...agentCommand(), 'meter-sim', '--path', path, '--model', 'sdm630', '--baud', '9600', '--control-port', '0', '--seed', '7', ...extraArgs];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => endProcess(child));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const controlPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`meter-sim did not report its control port within 20 s: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /control on 127\.0\.0\.1:(\d+)/.exec(line);
      if (!match) return;
      clearTimeout(timer);
      resolve(Number(match[1]));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`meter-sim exited with ${code}: ${stderr}`));
    });
  });
  const control = async (line: string): Promise<string> => {
    const socket = connect(controlPort, '127.0.0.1');
    try {
      socket.setEncoding('utf8');
      await once(socket, 'connect');
      socket.write(`${line}\n`);
      let reply = '';
      for await (const chunk of socket) {
        reply += chunk as string;
        if (reply.includes('\n')) break;
      }
      return reply.trim();
    } finally {
      socket.destroy();
    }
  };
  return { child, controlPort, control, truth: async () => JSON.parse(await control('truth')) as SimTruthLine };
}

export async function expectOk(sim: MeterSimProcess, line: string): Promise<void> {
  assert.equal(await sim.control(line), 'OK', `meter-sim control "${line}"`);
}

export function modbusArgs(agentPath: string, extra: string[] = []): string[] {
  return ['--meter-driver', 'modbus', '--meter-path', agentPath, '--meter-model', 'sdm630', '--meter-baud', '9600', ...extra];
}

