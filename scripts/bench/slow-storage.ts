// Figure 7, a slow SD card: the compiled daemon (Kafka and MQTT on) with every fsync/fdatasync slowed
// by an LD_PRELOAD shim (test/support/slow-fsync.c, built here with cc) to each of BENCH_SLOW_STALLS_MS
// (0: no shim, normal fsync), one run after the other. In each run, while a plain child process polls
// STATUS? every 20 ms (and another polls a bare Node server answering OK the same way: what the box
// itself adds to a round trip): the store opens in its worker, one session ends by unplugging, BENCH_SLOW_ESTOPS
// sessions end by an e-stop (each SIM#ESTOP#ON timed from another plain child process: connect → ACK,
// the relay is opened before the ACK), one ends by the RCD tripping. Then the stall ends and the run
// waits until every session is on Kafka, and counts what is missing or twice there and in the ledger.
// The same scenario as test/slow-storage.test.ts (test/support/slow-storage-rig.ts); the test asserts
// the bounds with margins, this only measures.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentProcess } from '../../test/support/agent-process.js';
import { readTopic } from '../../test/support/kafka-topic.js';
import { buildSlowFsyncShim, deliveryCheck, driveSlowStorageScenario, ledgerCheck, pollStatus, STATUS_POLL_MS } from '../../test/support/slow-storage-rig.js';
import { brokersFromEnv, startBenchAgent, startBenchServer, type BenchBrokers } from './agents.js';
import type { SlowStoragePart, SlowStorageRun } from './parts.js';
import { loadavg } from './proc.js';
import { BENCH_DIR, loadSettings, writePart } from './settings.js';
import { round, summarize } from './stats.js';

const SHIM = join(BENCH_DIR, 'slow-fsync.so');
const STALL_FILE = join(BENCH_DIR, 'slow-fsync-ms');
const DRAIN_TIMEOUT_MS = 180_000;

async function measure(stallMs: number, estops: number, brokers: BenchBrokers): Promise<SlowStorageRun> {
  const loadavgBefore = loadavg();
  const runStarted = performance.now();
  const topic = `bench-slow-${stallMs}-${randomUUID().slice(0, 8)}`;
  writeFileSync(STALL_FILE, String(stallMs));
  const started = performance.now();
  const agent: AgentProcess = await startBenchAgent({
    cpId: `BENCH-SLOW-${stallMs}`,
    brokers,
    args: ['--kafka-topic', topic],
    env: stallMs > 0 ? { LD_PRELOAD: SHIM, SLOW_FSYNC_FILE: STALL_FILE } : {},
  });
  const readyMs = performance.now() - started;
  const control = await startBenchServer('ok-server.ts');
  try {
    const controlPoll = pollStatus(control.port);
    const figures = await driveSlowStorageScenario(agent, estops);
    const controlMs = await controlPoll.stop();
    writeFileSync(STALL_FILE, '0'); // the stall ends: what waited in memory is committed and delivered
    const drainFrom = performance.now();
    const messages = await readTopic(
      brokers.kafkaBrokers.split(','),
      topic,
      (all) => figures.ended.every((id) => all.some((m) => m.type === 'SUPPLY_END' && m.session_id === id)),
      DRAIN_TIMEOUT_MS,
    );
    const drainedS = (performance.now() - drainFrom) / 1000;
    agent.kill('SIGTERM');
    const { code } = await agent.exited;
    const delivery = deliveryCheck(figures.started, messages);
    const ledger = ledgerCheck(agent.stateDir, figures.started);
    const run: SlowStorageRun = {
      stallMs,
      readyMs: round(readyMs, 1),
      storeOpenMs: figures.storeOpenMs,
      statusMs: summarize(figures.statusMs, 2),
      controlMs: summarize(controlMs, 2),
      estopMs: summarize(figures.estopMs, 2),
      sessions: figures.started.length,
      kafka: { messages: messages.length, missing: delivery.missing.length, duplicated: delivery.duplicated.length, seqInOrder: delivery.seqInOrder, drainedS: round(drainedS, 1) },
      ledger: { sessions: figures.started.length - ledger.missing.length, missing: ledger.missing.length, notClosed: ledger.notClosed.length },
      exitCode: code,
      loadavgBefore,
      loadavgAfter: loadavg(),
      elapsedS: round((performance.now() - runStarted) / 1000, 1),
    };
    console.error(
      `bench slow-storage: fsync +${stallMs} ms → READY ${run.readyMs} ms, STATUS? p99 ${run.statusMs.p99} / max ${run.statusMs.max} ms (${run.statusMs.n}; bare OK server ${run.controlMs?.p99} / ${run.controlMs?.max} ms), ` +
        `e-stop p99 ${run.estopMs.p99} / max ${run.estopMs.max} ms (${run.estopMs.n}), Kafka ${run.kafka.missing} lost / ${run.kafka.duplicated} dup, loadavg ${run.loadavgAfter}`,
    );
    return run;
  } finally {
    writeFileSync(STALL_FILE, '0');
    control.stop();
    await agent.stop();
  }
}

async function main(): Promise<void> {
  const { slowStorage } = loadSettings();
  const brokers = brokersFromEnv();
  mkdirSync(BENCH_DIR, { recursive: true });
  buildSlowFsyncShim(SHIM);
  const date = new Date().toISOString();
  const runs: SlowStorageRun[] = [];
  for (const stallMs of slowStorage.stallsMs) runs.push(await measure(stallMs, slowStorage.estops, brokers));
  const part: SlowStoragePart = { date, pollEveryMs: STATUS_POLL_MS, estopsPerRun: slowStorage.estops, runs };
  writePart('slow-storage', part);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
