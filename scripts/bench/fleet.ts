// Figure 6, fleet sizing: N compiled agents on simulated hardware, each charging (1 Hz CONSUMO),
// each with its own --cp-id, --state-dir and free ports, all against one Kafka (MQTT off). N grows
// through BENCH_FLEET_STEPS until the telemetry p99 (sample → broker append, see kafka-tap.ts)
// passes 100 ms or the box is saturated (CPU ≥ 95 % busy, or the next step would not fit in 70 % of
// the memory available); the figure is the largest N under 100 ms. The test broker's cp_telemetry
// has one partition, so the figure is per host and per partition at once.
import { readFileSync } from 'node:fs';
import type { AgentProcess } from '../../test/support/agent-process.js';
import { brokersFromEnv, startBenchAgent, startCharging } from './agents.js';
import { consumoLatencies, prepareTelemetryTopic, startTap, type Tap } from './kafka-tap.js';
import { machineBusyShare, machineTicks, sampleProcess } from './proc.js';
import type { FleetPart, FleetStep } from './parts.js';
import { loadSettings, sleep, writePart } from './settings.js';
import { round, summarize } from './stats.js';

const START_BATCH = 8;
const SETTLE_MS = 5_000;
/** Share of MemAvailable a step may take, so that the fleet never pushes the box into swap or the OOM killer. */
const MEMORY_SHARE = 0.7;
const FIRST_STEP_RSS_MB = 90;

function memAvailableMb(): number {
  const match = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

async function startFleet(count: number, kafkaBrokers: string): Promise<AgentProcess[]> {
  const agents: AgentProcess[] = [];
  for (let first = 0; first < count; first += START_BATCH) {
    const batch = Array.from({ length: Math.min(START_BATCH, count - first) }, (_, i) =>
      startBenchAgent({ cpId: `BENCH-FLEET-${count}-${first + i + 1}`, brokers: { kafkaBrokers }, readyTimeoutMs: 180_000 }),
    );
    agents.push(...(await Promise.all(batch)));
  }
  for (let first = 0; first < count; first += START_BATCH) await Promise.all(agents.slice(first, first + START_BATCH).map((agent) => startCharging(agent, 60_000)));
  return agents;
}

async function runStep(count: number, kafkaBrokers: string, tap: Tap, windowS: number, limitMs: number, saturatedShare: number): Promise<FleetStep> {
  const started = performance.now();
  let agents: AgentProcess[] = [];
  const prefix = `BENCH-FLEET-${count}-`;
  try {
    agents = await startFleet(count, kafkaBrokers);
    const startS = round((performance.now() - started) / 1000, 1);
    await sleep(SETTLE_MS);
    const fromMs = Date.now();
    const ticksBefore = machineTicks();
    const before = agents.map((agent) => sampleProcess(agent.pid));
    await sleep(windowS * 1000);
    const toMs = Date.now();
    const machineBusy = machineBusyShare(ticksBefore, machineTicks());
    const after = agents.map((agent) => sampleProcess(agent.pid));
    // wait until every agent's messages from the window are in (or 30 s)
    await Promise.all(agents.map((_, i) => tap.waitFor((m) => m.cpId === `${prefix}${i + 1}` && m.sampleMs > toMs, 30_000).catch(() => undefined)));
    const latencies = consumoLatencies(tap.messages, fromMs, toMs, (id) => id.startsWith(prefix));
    const sampleToAppendMs = summarize(latencies, 1);
    if (latencies.length === 0) throw new Error('no CONSUMO from the fleet reached Kafka in the window');
    const verdict = sampleToAppendMs.p99 > limitMs ? 'p99_over_limit' : machineBusy >= saturatedShare ? 'saturated' : 'ok';
    return {
      agents: count,
      windowS,
      expectedMessages: Math.round(count * windowS),
      receivedMessages: latencies.length,
      sampleToAppendMs,
      machineBusy: round(machineBusy, 3),
      agentCpuMean: round(after.reduce((sum, s, i) => sum + (s.cpuS - before[i]!.cpuS), 0) / count / ((toMs - fromMs) / 1000), 4),
      agentRssMeanMb: round(after.reduce((sum, s) => sum + s.rssKb, 0) / count / 1024, 1),
      startS,
      verdict,
    };
  } catch (error) {
    return {
      agents: count,
      windowS,
      expectedMessages: Math.round(count * windowS),
      receivedMessages: 0,
      sampleToAppendMs: summarize([]),
      machineBusy: 0,
      agentCpuMean: 0,
      agentRssMeanMb: 0,
      startS: round((performance.now() - started) / 1000, 1),
      verdict: 'failed',
      error: (error as Error).message.split('\n')[0],
    };
  } finally {
    await Promise.all(agents.map((agent) => agent.stop()));
  }
}

async function main(): Promise<void> {
  const { fleet } = loadSettings();
  const { kafkaBrokers } = brokersFromEnv();
  const timestampType = await prepareTelemetryTopic(kafkaBrokers);
  const tap = await startTap(kafkaBrokers, (id) => id.startsWith('BENCH-FLEET-'));
  const steps: FleetStep[] = [];
  let memoryLimit: { nextStep: number; needMb: number; availableMb: number } | undefined;
  try {
    for (const count of fleet.steps) {
      const perAgentMb = steps.at(-1)?.agentRssMeanMb ?? FIRST_STEP_RSS_MB;
      const availableMb = memAvailableMb();
      if (count * perAgentMb * 1.2 > availableMb * MEMORY_SHARE) {
        memoryLimit = { nextStep: count, needMb: Math.round(count * perAgentMb * 1.2), availableMb: Math.round(availableMb) };
        console.error(`bench fleet: ${count} agents would need about ${memoryLimit.needMb} MB of ${memoryLimit.availableMb} MB available; stopping`);
        break;
      }
      const step = await runStep(count, kafkaBrokers, tap, fleet.windowS, fleet.p99LimitMs, fleet.saturatedShare);
      steps.push(step);
      console.error(`bench fleet: ${count} agents → p99 ${step.sampleToAppendMs.p99} ms, box ${Math.round(step.machineBusy * 100)} % busy (${step.verdict})`);
      if (step.verdict !== 'ok') break;
    }
  } finally {
    await tap.stop();
  }
  const underLimit = steps.filter((step) => step.verdict !== 'failed' && step.sampleToAppendMs.p99 <= fleet.p99LimitMs);
  const largest = underLimit.at(-1)?.agents ?? 0;
  const last = steps.at(-1);
  const part: FleetPart = {
    p99LimitMs: fleet.p99LimitMs,
    partitions: 1,
    timestampType,
    largestUnderLimit: largest,
    limitNotReached: last?.verdict === 'ok' && memoryLimit === undefined,
    memoryLimit,
    steps,
  };
  writePart('fleet', part);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
