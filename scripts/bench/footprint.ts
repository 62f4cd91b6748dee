// Figure 3, footprint of `charger-agent run` from compiled JavaScript with Kafka and MQTT on:
// start-up time to READY (spawn → the agent_ready log line), then one agent left idle and then
// charging, each for at least its window, beside a bare `node` process sampled at the same
// moments: resident memory at the end of each window (and its peak), CPU share of one core from
// utime + stime over the window, and bytes written (write_bytes: what reached the block layer;
// wchar: what went through write calls) scaled to an hour.
import type { AgentProcess } from '../../test/support/agent-process.js';
import { startBareNode, startBenchAgent, startCharging, type BareNode, type BenchBrokers } from './agents.js';
import { between, sampleProcess, type ProcSample } from './proc.js';
import type { StartupResults } from './results.js';
import { median, round } from './stats.js';

const SAMPLE_EVERY_MS = 10_000;

export async function measureStartup(runs: number, brokers: BenchBrokers): Promise<StartupResults> {
  const agentMs: number[] = [];
  const bareMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const agent = await startBenchAgent({ cpId: 'BENCH-START', brokers });
    agentMs.push(performance.now() - started);
    await agent.stop();
    const bare = await startBareNode();
    bareMs.push(bare.startMs);
    await bare.stop();
  }
  return {
    runs,
    readyMs: round(median(agentMs), 0),
    readyRunsMs: agentMs.map((ms) => round(ms, 0)),
    bareNodeFirstLineMs: round(median(bareMs), 0),
  };
}

export interface WindowFigures {
  windowS: number;
  rssMb: number;
  peakRssMb: number;
  maxSampledRssMb: number;
  cpuShare: number;
  writeBytesPerHour: number;
  writeCallBytesPerHour: number;
}

function figures(from: ProcSample, to: ProcSample, samples: readonly ProcSample[]): WindowFigures {
  const span = between(from, to);
  const inWindow = samples.filter((s) => s.atMs >= from.atMs && s.atMs <= to.atMs);
  return {
    windowS: round(span.windowS, 1),
    rssMb: round(to.rssKb / 1024, 1),
    peakRssMb: round(to.peakRssKb / 1024, 1),
    maxSampledRssMb: round(Math.max(to.rssKb, ...inWindow.map((s) => s.rssKb)) / 1024, 1),
    cpuShare: round(span.cpuShare, 4),
    writeBytesPerHour: Math.round(span.writeBytesPerHour),
    writeCallBytesPerHour: Math.round(span.writeCallBytesPerHour),
  };
}

export interface FootprintWindow {
  agent: WindowFigures;
  /** The same agent with Kafka and MQTT off: what the brokers' clients cost. */
  agentBrokersOff: WindowFigures;
  bareNode: WindowFigures;
}

type Processes = Record<keyof FootprintWindow, ProcSample>;

/**
 * The footprint agent (Kafka and MQTT on), the same agent with brokers off, and a bare node, sampled
 * every 10 s and at the window edges. Both agents first run one short session, as a charge point in
 * service has: the Kafka producer connects on the first message, and an agent that never sent one
 * would show less than a device in service does.
 */
export class FootprintRun {
  private readonly samples: Processes[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly marks: Record<string, Processes> = {};

  private constructor(
    readonly agent: AgentProcess,
    readonly agentBrokersOff: AgentProcess,
    readonly bare: BareNode,
  ) {}

  static async start(brokers: BenchBrokers): Promise<FootprintRun> {
    const agent = await startBenchAgent({ cpId: 'BENCH-FOOTPRINT', brokers });
    const agentBrokersOff = await startBenchAgent({ cpId: 'BENCH-FOOTPRINT-OFF' });
    const bare = await startBareNode();
    const run = new FootprintRun(agent, agentBrokersOff, bare);
    await Promise.all([agent, agentBrokersOff].map((one) => shortSession(one)));
    run.timer = setInterval(() => run.sample(), SAMPLE_EVERY_MS);
    return run;
  }

  private sample(): Processes {
    const now: Processes = {
      agent: sampleProcess(this.agent.pid),
      agentBrokersOff: sampleProcess(this.agentBrokersOff.pid),
      bareNode: sampleProcess(this.bare.child.pid!),
    };
    this.samples.push(now);
    return now;
  }

  mark(name: string): void {
    this.marks[name] = this.sample();
  }

  window(fromMark: string, toMark: string): FootprintWindow {
    const from = this.marks[fromMark]!;
    const to = this.marks[toMark]!;
    const of = (key: keyof FootprintWindow) => figures(from[key], to[key], this.samples.map((s) => s[key]));
    return { agent: of('agent'), agentBrokersOff: of('agentBrokersOff'), bareNode: of('bareNode') };
  }

  async startCharging(): Promise<void> {
    await Promise.all([startCharging(this.agent), startCharging(this.agentBrokersOff)]);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.agent.stop(), this.agentBrokersOff.stop(), this.bare.stop()]);
  }
}

/** Charges for a few seconds and unplugs, then waits for the agent to be available again. */
async function shortSession(agent: AgentProcess): Promise<void> {
  await startCharging(agent);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const unplugged = await agent.send('SIM#UNPLUG');
  if (!unplugged.startsWith('ACK')) throw new Error(`bench: unplug refused by ${agent.pid}: ${unplugged}`);
  await agent.until((info) => info.state === 'Available' && info.session === null, 30_000, 100);
}
