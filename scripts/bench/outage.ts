// Figure 4, a Kafka outage while charging, on a broker of its own (the second set of test
// services bench.sh starts) so that the other figures keep theirs: an agent charges with Kafka up
// until its CONSUMO arrive, then `scripts/test-services.sh stop-kafka`; the agent charges on for
// at least the outage window, writing its outbox to disk (bytes written, scaled to an hour, are
// the "broker down" figure); then `start-kafka`, and the broker's append times of the backlog say
// how long the agent took to reconnect, how long to drain it and at what rate.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { brokersFromEnv, startBenchAgent, startCharging } from './agents.js';
import { prepareTelemetryTopic, startTap, type TappedMessage } from './kafka-tap.js';
import { between, sampleProcess } from './proc.js';
import { REPO_ROOT, sleep } from './settings.js';
import { round } from './stats.js';

const CP_ID = 'BENCH-OUTAGE';

function services(command: 'stop-kafka' | 'start-kafka', runDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(REPO_ROOT, 'scripts/test-services.sh'), command], { env: { ...process.env, TEST_SERVICES_DIR: runDir }, timeout: 300_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`test-services.sh ${command} failed: ${error.message} ${stderr}`)) : resolve(),
    );
  });
}

/** Seq numbers missing between the first and last seen, and ids seen twice. */
function gapsAndDuplicates(messages: readonly TappedMessage[]): { missing: number; duplicates: number } {
  const seqs = messages.map((m) => m.seq).sort((a, b) => a - b);
  const unique = new Set(seqs);
  const ids = new Set(messages.map((m) => m.id));
  const span = seqs.length === 0 ? 0 : seqs.at(-1)! - seqs[0]! + 1;
  return { missing: span - unique.size, duplicates: messages.length - ids.size };
}

export interface OutageOptions {
  minutes: number;
  /** The outage lasts at least until this resolves (the runner's busy benchmarks are done). */
  notBefore: Promise<void>;
  drainTimeoutMs: number;
}

export async function runOutage({ minutes, notBefore, drainTimeoutMs }: OutageOptions) {
  const brokers = brokersFromEnv('OUTAGE_');
  const runDir = process.env.OUTAGE_TEST_SERVICES_DIR;
  if (!runDir) throw new Error('BENCH_BROKERS_MISSING: OUTAGE_TEST_SERVICES_DIR must be set; run the benchmarks with `npm run bench`');
  await prepareTelemetryTopic(brokers.kafkaBrokers);
  const startedMs = Date.now();
  const agent = await startBenchAgent({ cpId: CP_ID, brokers });
  try {
    const before = await startTap(brokers.kafkaBrokers, (id) => id === CP_ID);
    await startCharging(agent);
    await before.waitFor((m) => m.type === 'CONSUMO', 60_000);
    await before.stop();

    await services('stop-kafka', runDir);
    const downFrom = sampleProcess(agent.pid);
    await Promise.all([sleep(minutes * 60_000), notBefore]);
    const downTo = sampleProcess(agent.pid);
    const down = between(downFrom, downTo);
    const infoBefore = await agent.info();

    await services('start-kafka', runDir);
    const kafkaBackMs = Date.now();
    const after = await startTap(brokers.kafkaBrokers, (id) => id === CP_ID);
    let drained = true;
    try {
      // drained once a sample taken after the restart has arrived: the backlog goes out first
      await after.waitFor((m) => m.type === 'CONSUMO' && m.sampleMs > kafkaBackMs + 1000, drainTimeoutMs);
    } catch {
      drained = false;
    }
    await after.stop();
    const ofThisRun = after.messages.filter((m) => m.sampleMs >= startedMs);
    const backlog = ofThisRun.filter((m) => m.appendMs >= downFrom.atMs && m.sampleMs < kafkaBackMs);
    const appends = backlog.map((m) => m.appendMs);
    const first = Math.min(...appends);
    const last = Math.max(...appends);
    const batches = new Set(appends).size;
    return {
      outageS: round(down.windowS, 0),
      stateDuringOutage: infoBefore.state,
      brokerDown: { writeBytesPerHour: Math.round(down.writeBytesPerHour), writeCallBytesPerHour: Math.round(down.writeCallBytesPerHour), cpuShare: round(down.cpuShare, 4) },
      drained,
      backlogMessages: backlog.length,
      batches,
      reconnectS: backlog.length > 0 ? round((first - kafkaBackMs) / 1000, 2) : null,
      drainedS: backlog.length > 0 ? round((last - kafkaBackMs) / 1000, 2) : null,
      /** Messages per second from the first to the last append of the backlog; null when it went in one batch. */
      drainRatePerS: batches > 1 ? Math.round(backlog.length / ((last - first) / 1000)) : null,
      ...gapsAndDuplicates(ofThisRun),
      messagesRead: ofThisRun.length,
    };
  } finally {
    await agent.stop();
  }
}
