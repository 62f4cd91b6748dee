// `npm run bench` (after scripts/bench.sh has built dist/, compiled the load client and started
// two sets of test brokers): runs every benchmark, prints the table, writes .bench/results.json
// and .bench/README-performance.md. `node --import tsx scripts/bench/run.ts --report` prints the
// table and rewrites the README section from an existing .bench/results.json.
//
// BENCH_ONLY=slow-storage (or another part run in its own process, comma-separated) runs just those
// parts and merges them into an existing .bench/results.json (the other parts keep their figures,
// the header says what was re-run when); with no results.json the other parts read "not run".
//
// The order keeps the long windows from adding up (about 30 minutes in all):
//   1. start-up time to READY, then the slow-SD-card runs (scripts/bench/slow-storage.ts), alone on
//      the box: both time single answers that any other load on 2 cores would show up in;
//   2. the footprint agent starts idle beside a bare node, and the outage agent starts charging on
//      the second Kafka, which is then stopped; meanwhile the busy benchmarks run one at a time,
//      each in its own process: health checks, fault reaction, meter link, fleet;
//   3. when the idle window and the busy benchmarks are over, the outage ends (Kafka restarted,
//      backlog drained) and the footprint agent charges for its window, while the in-process ack
//      benchmark charges beside it (both light, 1 Hz).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokersFromEnv } from './agents.js';
import { FootprintRun, measureStartup } from './footprint.js';
import { consumoLatencies, prepareTelemetryTopic, startTap } from './kafka-tap.js';
import { runOutage } from './outage.js';
import type { AckPart } from './parts.js';
import { loadavg, machineBusyShare, machineInfo, machineTicks } from './proc.js';
import { buildRows, renderMarkdown, renderTable } from './report.js';
import type { FootprintResults, Outcome, Results } from './results.js';
import { BENCH_DIR, REPO_ROOT, loadSettings, partPath, readPart, sleep } from './settings.js';
import { summarize } from './stats.js';

const FOOTPRINT_CP_ID = 'BENCH-FOOTPRINT';
/** CONSUMO in the first seconds of charging are left out: the producer may still be connecting. */
const CHARGE_WARMUP_MS = 5_000;

const runStartedMs = Date.now();
const progress = (text: string) => process.stderr.write(`bench [${Math.round((Date.now() - runStartedMs) / 1000)} s] ${text}\n`);

function failed(error: unknown): { ok: false; error: string } {
  const message = error instanceof Error ? error.message : String(error);
  progress(`FAILED: ${message.split('\n')[0]}`);
  return { ok: false, error: message.split('\n')[0] ?? message };
}

/** Runs scripts/bench/<name>.ts in its own process and reads back what it wrote. */
function runPart<T>(name: string, env: NodeJS.ProcessEnv = {}): Promise<Outcome<T>> {
  progress(`${name}: start`);
  rmSync(partPath(name), { force: true });
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts/bench', `${name}.ts`)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((resolve) => {
    child.once('error', (error) => resolve(failed(error)));
    child.once('exit', (code, signal) => {
      if (code !== 0) return resolve(failed(new Error(`${name} exited with ${signal ?? code}`)));
      try {
        progress(`${name}: done`);
        resolve({ ok: true, data: readPart<T>(name) });
      } catch (error) {
        resolve(failed(error));
      }
    });
  });
}

async function settle<T>(work: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, data: await work };
  } catch (error) {
    return failed(error);
  }
}

async function backgroundLoad(): Promise<Results['backgroundLoad']> {
  const before = machineTicks();
  await sleep(3_000);
  return { busyShare: machineBusyShare(before, machineTicks()), loadavg: loadavg() };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function main(): Promise<void> {
  const settings = loadSettings();
  const date = new Date().toISOString();
  const machine = machineInfo();
  const load = await backgroundLoad();
  const brokers = brokersFromEnv();
  progress(`${settings.quick ? 'quick' : 'full'} run on ${machine.cpuModel} × ${machine.cores}; background ${Math.round(load.busyShare * 100)} % busy`);
  const timestamps = await prepareTelemetryTopic(brokers.kafkaBrokers);
  const tap = await startTap(brokers.kafkaBrokers, (id) => id === FOOTPRINT_CP_ID);
  const parts: Results['parts'] = {};

  progress('start-up time to READY');
  const startup = await settle(measureStartup(settings.startup.runs, brokers));
  parts.slowStorage = await runPart('slow-storage');

  progress('footprint agent idle; outage agent charging on the second Kafka');
  const footprintRun = await settle(FootprintRun.start(brokers));
  const idleFromMs = Date.now();
  if (footprintRun.ok) footprintRun.data.mark('idleFrom');
  const busyDone = deferred();
  const outageMinMs = settings.outage.minutes * 60_000;
  const outage = settle(runOutage({ minutes: settings.outage.minutes, notBefore: busyDone.promise, drainTimeoutMs: Math.max(180_000, outageMinMs + 60_000) }));

  parts.health = await runPart('health-checks');
  parts.fault = await runPart('fault-reaction');
  parts.meter = await runPart('meter-link');
  parts.fleet = await runPart('fleet');
  busyDone.resolve();

  let footprint: Outcome<FootprintResults>;
  if (footprintRun.ok) {
    const run = footprintRun.data;
    footprint = await settle(
      (async (): Promise<FootprintResults> => {
        await sleep(Math.max(0, idleFromMs + settings.footprint.idleMin * 60_000 - Date.now()));
        run.mark('idleTo');
        progress('footprint agent charging; in-process ack benchmark beside it');
        await run.startCharging();
        run.mark('chargeFrom');
        const chargeFromMs = Date.now();
        const chargeMs = settings.footprint.chargeMin * 60_000;
        const ack = runPart<AckPart>('telemetry-ack', { BENCH_ACK_SECONDS: String(chargeMs / 1000) });
        await sleep(chargeMs);
        run.mark('chargeTo');
        const chargeToMs = Date.now();
        await tap.waitFor((m) => m.sampleMs > chargeToMs, 30_000).catch(() => undefined);
        const latencies = consumoLatencies(tap.messages, chargeFromMs + CHARGE_WARMUP_MS, chargeToMs);
        const stateAfterCharging = (await run.agent.info()).state;
        parts.ack = await ack;
        return {
          idle: run.window('idleFrom', 'idleTo'),
          charging: run.window('chargeFrom', 'chargeTo'),
          stateAfterCharging,
          sampleToAppendMs: latencies.length > 0 ? summarize(latencies, 1) : undefined,
        };
      })(),
    );
    await run.stop();
  } else {
    footprint = footprintRun;
  }
  progress('waiting for the outage benchmark to drain its backlog');
  const outageResult = await outage;
  await tap.stop();

  const results: Results = {
    date,
    elapsedS: Math.round((Date.now() - runStartedMs) / 1000),
    machine,
    backgroundLoad: { busyShare: Math.round(load.busyShare * 1000) / 1000, loadavg: load.loadavg },
    settings,
    telemetryTopicTimestamps: timestamps,
    parts,
    startup,
    footprint,
    outage: outageResult,
  };
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(join(BENCH_DIR, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  report(results);
}

/** The parts BENCH_ONLY can run alone (each in its own process) and where their results go. */
const ALONE: Record<string, keyof Results['parts']> = {
  'slow-storage': 'slowStorage',
  'health-checks': 'health',
  'fault-reaction': 'fault',
  'meter-link': 'meter',
  fleet: 'fleet',
};

/** BENCH_ONLY: runs the named parts and merges them into .bench/results.json (a new one if none). */
async function runAlone(names: string[]): Promise<void> {
  const unknown = names.filter((name) => !(name in ALONE));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY_UNKNOWN: ${unknown.join(', ')} cannot run alone; BENCH_ONLY takes ${Object.keys(ALONE).join(', ')}`);
  const path = join(BENCH_DIR, 'results.json');
  const merged = existsSync(path);
  const results: Results = merged
    ? (JSON.parse(readFileSync(path, 'utf8')) as Results)
    : {
        date: new Date().toISOString(),
        elapsedS: 0,
        machine: machineInfo(),
        backgroundLoad: await backgroundLoad(),
        settings: loadSettings(),
        telemetryTopicTimestamps: 'not checked (BENCH_ONLY run)',
        parts: {},
      };
  progress(merged ? `BENCH_ONLY=${names.join(',')}: merging into ${path}` : `BENCH_ONLY=${names.join(',')}: no ${path} yet, the other parts read "not run"`);
  for (const name of names) {
    const rerun = { part: name, date: new Date().toISOString(), loadavg: loadavg() };
    (results.parts as Record<string, Outcome<unknown>>)[ALONE[name]!] = await runPart(name);
    results.reruns = [...(results.reruns ?? []).filter((other) => other.part !== name), rerun];
  }
  if (!merged) results.elapsedS = Math.round((Date.now() - runStartedMs) / 1000);
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
  report(results);
}

/** Prints the table and writes the README section; `run.ts --report` redoes it from results.json. */
function report(results: Results): void {
  const rows = buildRows(results);
  writeFileSync(join(BENCH_DIR, 'README-performance.md'), renderMarkdown(results, rows));
  process.stdout.write(renderTable(results, rows) + '\n\n');
  process.stdout.write(`results: ${join(BENCH_DIR, 'results.json')}\nREADME section: ${join(BENCH_DIR, 'README-performance.md')}\n`);
}

const only = (process.env.BENCH_ONLY ?? '').split(',').map((name) => name.trim()).filter(Boolean);
const work = process.argv.includes('--report')
  ? Promise.resolve(report(JSON.parse(readFileSync(join(BENCH_DIR, 'results.json'), 'utf8')) as Results))
  : only.length > 0
    ? runAlone(only)
    : main();

work.then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
