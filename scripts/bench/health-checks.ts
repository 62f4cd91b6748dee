// Figure 1, health checks while a session is charging: 32 concurrent clients (the C load client,
// scripts/bench/tcp-load.c) against the agent's TCP health port, one connection per check (the
// Monitor's pattern) and kept-open connections, and the same load against the least a Node TCP
// server can do (scripts/bench/ok-server.ts), the ceiling for this runtime, and against the agent's
// protocol server alone (scripts/bench/protocol-server.ts), to show where the difference lies. Each
// run measures all of them in turn, in a rotating order; ratios to the ceiling are taken within
// each run.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { brokersFromEnv, startBenchAgent, startBenchServer, startCharging } from './agents.js';
import type { HealthPart, HealthRuns } from './parts.js';
import { sampleProcess } from './proc.js';
import { BENCH_DIR, loadSettings, writePart } from './settings.js';
import { histogramPercentile, median, round } from './stats.js';

type Mode = 'connect' | 'keep';
type Target = 'agent' | 'protocol' | 'ceiling';

interface LoadResult {
  mode: Mode;
  duration_s: number;
  count: number;
  ok: number;
  other_replies: number;
  errors: number;
  connect_errors: number;
  client_cpu_s: number;
  max_us: number;
  overflow: number;
  hist_us: Array<[number, number]>;
}

interface Measurement {
  target: Target;
  mode: Mode;
  checksPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  notOk: number;
  /** CPU share of one core: the load client's and the server's, over the measured window. */
  clientCpu: number;
  serverCpu: number;
}

export const LOAD_CLIENT = join(BENCH_DIR, 'tcp-load');

function runLoad(port: number, connections: number, durationS: number, warmupS: number, mode: Mode): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(LOAD_CLIENT, ['127.0.0.1', String(port), String(connections), String(durationS), String(warmupS), mode], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`tcp-load failed: ${error.message} ${stderr}`));
      else resolve(JSON.parse(stdout) as LoadResult);
    });
  });
}

async function measure(target: Target, pid: number, port: number, mode: Mode): Promise<Measurement> {
  const { health } = loadSettings();
  const before = sampleProcess(pid);
  const load = await runLoad(port, health.connections, health.durationS, health.warmupS, mode);
  const after = sampleProcess(pid);
  const serverWindowS = (after.atMs - before.atMs) / 1000;
  const p = (q: number) => histogramPercentile(load.hist_us, q, load.max_us, load.overflow) / 1000;
  return {
    target,
    mode,
    checksPerS: round(load.count / load.duration_s, 0),
    p50Ms: round(p(50), 3),
    p99Ms: round(p(99), 3),
    maxMs: round(load.max_us / 1000, 3),
    errors: load.errors + load.connect_errors,
    notOk: load.other_replies,
    clientCpu: round(load.client_cpu_s / load.duration_s, 3),
    // the server's window includes the warm-up and process start: an approximation of its share
    serverCpu: round((after.cpuS - before.cpuS) / serverWindowS, 3),
  };
}

/** Starts scripts/bench/<script>.ts, which prints {"port":N} once it listens. */
function summarizeRuns(measurements: Measurement[], target: Target, mode: Mode): HealthRuns {
  const runs = measurements.filter((m) => m.target === target && m.mode === mode);
  return {
    checksPerS: median(runs.map((m) => m.checksPerS)),
    p50Ms: median(runs.map((m) => m.p50Ms)),
    p99Ms: median(runs.map((m) => m.p99Ms)),
    maxMs: Math.max(...runs.map((m) => m.maxMs)),
    clientCpu: median(runs.map((m) => m.clientCpu)),
    serverCpu: median(runs.map((m) => m.serverCpu)),
    errors: runs.reduce((sum, m) => sum + m.errors + m.notOk, 0),
    runs: runs.map((m) => m.checksPerS),
  };
}

async function main(): Promise<void> {
  const { health } = loadSettings();
  if (!existsSync(LOAD_CLIENT)) throw new Error(`BENCH_NOT_BUILT: ${LOAD_CLIENT} is missing (gcc -O2 -o .bench/tcp-load scripts/bench/tcp-load.c)`);
  const agent = await startBenchAgent({ cpId: 'BENCH-HEALTH', brokers: brokersFromEnv() });
  const ceiling = await startBenchServer('ok-server.ts');
  const protocol = await startBenchServer('protocol-server.ts');
  const servers: Record<Target, { pid: number; port: number }> = { agent: { pid: agent.pid, port: agent.healthPort }, protocol, ceiling };
  try {
    await startCharging(agent);
    const targets: Target[] = ['agent', 'ceiling', 'protocol'];
    const plan: Array<[Target, Mode]> = (['connect', 'keep'] as const).flatMap((mode) => targets.map((target): [Target, Mode] => [target, mode]));
    const measurements: Measurement[] = [];
    const ratios: Record<Mode, number[]> = { connect: [], keep: [] };
    const protocolRatios: Record<Mode, number[]> = { connect: [], keep: [] };
    for (let run = 0; run < health.runs; run++) {
      const order = [...plan.slice(run % plan.length), ...plan.slice(0, run % plan.length)];
      const thisRun: Measurement[] = [];
      for (const [target, mode] of order) {
        thisRun.push(await measure(target, servers[target].pid, servers[target].port, mode));
      }
      for (const mode of ['connect', 'keep'] as const) {
        const rate = (target: Target) => thisRun.find((m) => m.target === target && m.mode === mode)!.checksPerS;
        ratios[mode].push(round(rate('agent') / rate('ceiling'), 3));
        protocolRatios[mode].push(round(rate('protocol') / rate('ceiling'), 3));
      }
      measurements.push(...thisRun);
    }
    const info = await agent.info();
    const part: HealthPart = {
      connections: health.connections,
      runs: health.runs,
      durationS: health.durationS,
      agentStateAfter: info.state,
      agent: { connect: summarizeRuns(measurements, 'agent', 'connect'), keep: summarizeRuns(measurements, 'agent', 'keep') },
      ceiling: { connect: summarizeRuns(measurements, 'ceiling', 'connect'), keep: summarizeRuns(measurements, 'ceiling', 'keep') },
      ratio: { connect: median(ratios.connect), keep: median(ratios.keep), connectRuns: ratios.connect, keepRuns: ratios.keep },
      protocolRatio: { connect: median(protocolRatios.connect), keep: median(protocolRatios.keep) },
      measurements,
    };
    writePart('health-checks', part);
  } finally {
    ceiling.stop();
    protocol.stop();
    await agent.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
