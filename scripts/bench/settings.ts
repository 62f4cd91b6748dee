// How long and how often each benchmark runs: the full run (the published figures, about 25
// minutes on a 2-core box) or BENCH_QUICK=1 (a smoke run of a few minutes). Every knob can be
// overridden by its own env variable; the values used are written into results.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const BENCH_DIR = join(REPO_ROOT, '.bench');
const PARTS_DIR = join(BENCH_DIR, 'parts');

export interface BenchSettings {
  quick: boolean;
  health: { runs: number; durationS: number; warmupS: number; connections: number };
  fault: { trials: number };
  startup: { runs: number };
  footprint: { idleMin: number; chargeMin: number };
  outage: { minutes: number };
  meter: { reads: number };
  fleet: { steps: number[]; windowS: number; p99LimitMs: number; saturatedShare: number };
  /** fsync stalls to run the daemon under (0: no shim, normal fsync) and e-stops timed in each. */
  slowStorage: { stallsMs: number[]; estops: number };
}

function num(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`BENCH_SETTING_INVALID: ${name}=${value} is not a non-negative number`);
  return parsed;
}

/** A comma-separated list of non-negative integers; anything else in it is dropped. */
function integers(list: string): number[] {
  return list
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map(Number)
    .filter((item) => Number.isInteger(item) && item >= 0);
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const steps = integers(env.BENCH_FLEET_STEPS ?? (quick ? '4,16' : '4,16,64,128,192')).filter((step) => step > 0);
  return {
    quick,
    health: {
      runs: num(env, 'BENCH_HEALTH_RUNS', quick ? 3 : 5),
      durationS: num(env, 'BENCH_HEALTH_SECONDS', quick ? 2 : 6),
      warmupS: quick ? 0.5 : 1,
      connections: num(env, 'BENCH_HEALTH_CONNECTIONS', 32),
    },
    fault: { trials: num(env, 'BENCH_FAULT_TRIALS', quick ? 250 : 1000) },
    startup: { runs: num(env, 'BENCH_STARTUP_RUNS', quick ? 3 : 7) },
    footprint: { idleMin: num(env, 'BENCH_IDLE_MIN', quick ? 1 : 10), chargeMin: num(env, 'BENCH_CHARGE_MIN', quick ? 1 : 10) },
    outage: { minutes: num(env, 'BENCH_OUTAGE_MIN', quick ? 1 : 10) },
    meter: { reads: num(env, 'BENCH_METER_READS', quick ? 30 : 200) },
    fleet: {
      steps,
      windowS: num(env, 'BENCH_FLEET_WINDOW_S', quick ? 10 : 45),
      p99LimitMs: 100,
      saturatedShare: 0.95,
    },
    slowStorage: {
      stallsMs: integers(env.BENCH_SLOW_STALLS_MS ?? '0,500,2000'),
      estops: num(env, 'BENCH_SLOW_ESTOPS', quick ? 5 : 30),
    },
  };
}

/** Each benchmark process writes its results here; the runner reads them back. */
export function writePart(name: string, data: unknown): void {
  mkdirSync(PARTS_DIR, { recursive: true });
  writeFileSync(join(PARTS_DIR, `${name}.json`), JSON.stringify(data, null, 2) + '\n');
}

export function readPart<T>(name: string): T {
  return JSON.parse(readFileSync(join(PARTS_DIR, `${name}.json`), 'utf8')) as T;
}

export function partPath(name: string): string {
  return join(PARTS_DIR, `${name}.json`);
}

/** Waits without holding the process open beyond the wait. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
