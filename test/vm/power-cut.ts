// Power cuts on the host side: the guest's state disk (ext4 made here with mkfs.ext4), and a series
// of boots each SIGKILLed at a random point while the guest runs sessions (scripts/vm/guest/power-cut.mjs),
// then one more boot that only verifies.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { boot, readJson, type Provisioned } from './qemu.js';

const run = promisify(execFile);

interface RoundResults {
  checks: Record<string, { ok: boolean; error?: string; [key: string]: unknown }>;
  cutReady?: boolean;
}

export interface PowerCutRound {
  cut: boolean;
  reason?: string;
  wallMs: number;
  results?: RoundResults;
}

export interface PowerCutReport {
  rounds: PowerCutRound[];
  log: string[];
}

/** A 64 MiB ext4 image (the guest mounts it on /var/lib/charger-agent). */
export async function createStateDisk(work: string): Promise<string> {
  const image = join(work, 'state.ext4');
  await run('truncate', ['-s', '64M', image]);
  await run('mkfs.ext4', ['-q', '-F', '-L', 'charger-state', image]);
  return image;
}

function acknowledged(runDir: string, round: number): number {
  const file = join(runDir, `acks-${round}.jsonl`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

/** What the guest recorded when a boot ended by itself: its failed checks, its error, the agent's journal tail. */
function whyEnded(results: (RoundResults & { error?: string; agentJournalTail?: string[] }) | undefined): string {
  if (!results) return ' (no results recorded)';
  const failed = Object.entries(results.checks).filter(([, check]) => !check.ok).map(([name, check]) => `${name}: ${check.error}`);
  const parts = [...failed, ...(results.error ? [`error: ${results.error}`] : [])];
  const tail = results.agentJournalTail?.slice(-30).join('\n');
  return `: ${parts.join('; ') || 'no failed check'}${tail ? `\nagent journal:\n${tail}` : ''}`;
}

export async function powerCutSeries(options: { provisioned: Provisioned; work: string; payload: string; disk: string; cuts: number; timeoutMs: number }): Promise<PowerCutReport> {
  const runDir = join(options.work, 'power-cut');
  const report: PowerCutReport = { rounds: [], log: [] };
  for (let round = 0; round <= options.cuts; round += 1) {
    const last = round === options.cuts;
    // cut after 2..6 acknowledged session events, then 0..1.5 s more: anywhere in a session
    const after = 2 + Math.floor(Math.random() * 5);
    const outcome = await boot({
      provisioned: options.provisioned,
      runDir,
      payload: options.payload,
      disk: options.disk,
      instructions: { mode: 'power-cut', round, last, results: `power-cut-${round}.json` },
      timeoutMs: options.timeoutMs,
      cutWhen: last ? undefined : (dir) => acknowledged(dir, round) >= after,
      cutJitterMs: 1500,
    });
    const results = readJson<RoundResults>(join(runDir, `power-cut-${round}.json`));
    const entry: PowerCutRound = { cut: outcome.cut, wallMs: outcome.wallMs, results };
    if (!last && !outcome.cut) entry.reason = outcome.timedOut ? 'timed out' : `qemu exited ${outcome.code ?? outcome.signal} before the cut${whyEnded(results)}`;
    report.rounds.push(entry);
    report.log.push(
      `boot ${round}: ${outcome.cut ? `cut after ${acknowledged(runDir, round)} acknowledged events` : last ? 'verify only' : entry.reason}, ${(outcome.wallMs / 1000).toFixed(1)} s wall`,
    );
    if (!last && !outcome.cut) break;
  }
  return report;
}
