// The agents the benchmarks run: `charger-agent run` from compiled JavaScript (dist/, built by
// scripts/bench.sh) through the hardware-in-the-loop harness, on simulated hardware, and the
// brokers bench.sh started for them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, startAgent, type AgentProcess } from '../../test/support/agent-process.js';

export const DRIVER_ID = 'BENCH-DRIVER';

export interface BenchBrokers {
  kafkaBrokers: string;
  mqttUrl: string;
}

/** The shared brokers (KAFKA_BROKERS, MQTT_URL) or a second set under a prefix (OUTAGE_KAFKA_BROKERS …). */
export function brokersFromEnv(prefix = '', env: NodeJS.ProcessEnv = process.env): BenchBrokers {
  const kafkaBrokers = env[`${prefix}KAFKA_BROKERS`] ?? '';
  const mqttUrl = env[`${prefix}MQTT_URL`] ?? '';
  if (!kafkaBrokers || !mqttUrl) {
    throw new Error(`BENCH_BROKERS_MISSING: ${prefix}KAFKA_BROKERS and ${prefix}MQTT_URL must be set; run the benchmarks with \`npm run bench\``);
  }
  return { kafkaBrokers, mqttUrl };
}

export function requireCompiledAgent(): void {
  if (!existsSync(join(REPO_ROOT, 'dist/agent/cli.js'))) throw new Error('BENCH_NOT_BUILT: dist/agent/cli.js is missing; run `npm run build` (npm run bench does)');
}

export interface BenchAgentOptions {
  cpId: string;
  brokers?: Partial<BenchBrokers>;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

/** A compiled agent on simulated hardware, brokers as given (off when absent). */
export function startBenchAgent(options: BenchAgentOptions): Promise<AgentProcess> {
  requireCompiledAgent();
  const { kafkaBrokers = '', mqttUrl = '' } = options.brokers ?? {};
  return startAgent({
    compiled: true,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    env: options.env,
    args: ['--cp-id', options.cpId, '--kafka-brokers', kafkaBrokers, '--mqtt-url', mqttUrl, ...(options.args ?? [])],
  });
}

/** Authorizes a driver and plugs the simulated vehicle in; resolves once the contactor is closed. */
export async function startCharging(agent: AgentProcess, timeoutMs = 30_000): Promise<void> {
  const authorized = await agent.send(`AUTORIZAR_SUMINISTRO#${DRIVER_ID}`);
  if (!authorized.startsWith('ACK')) throw new Error(`bench: authorize refused by ${agent.pid}: ${authorized}`);
  const plugged = await agent.send('SIM#PLUG');
  if (!plugged.startsWith('ACK')) throw new Error(`bench: plug refused by ${agent.pid}: ${plugged}`);
  await agent.until((info) => info.state === 'Charging' && info.relay.feedback === 'closed', timeoutMs, 100);
}

/** A bare Node process doing nothing each second: what the runtime itself costs. */
export interface BareNode {
  child: ChildProcess;
  /** From spawn to its first line on stdout, in ms. */
  startMs: number;
  stop(): Promise<void>;
}

export function startBareNode(): Promise<BareNode> {
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', 'console.log("up"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    createInterface({ input: child.stdout! }).once('line', () =>
      resolve({
        child,
        startMs: performance.now() - started,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      }),
    );
  });
}

/** A server script of scripts/bench (ok-server.ts, protocol-server.ts) on a free port, as it printed it. */
export function startBenchServer(script: string): Promise<{ pid: number; port: number; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts/bench', script)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      resolve({ pid: child.pid!, port: (JSON.parse(line) as { port: number }).port, stop: () => child.kill('SIGTERM') });
    });
  });
}
