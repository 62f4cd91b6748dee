/**
 * `charger-agent diagnose` on a real journal file built from the agent's own output.
 *
 * The real `charger-agent run --hardware sim` runs twice: the first process goes through a meter
 * outage, a broker outage (Kafka on a closed port), an emergency stop and a welded contactor, and is
 * then killed; the second is its restart. Every stdout line becomes a journal entry the way journald
 * stores it (the `<N>` prefix becomes PRIORITY, the rest stays in MESSAGE: checked against a real
 * journald stdout stream when this was written), at the time it was written. PID 1 is not systemd
 * here, so its side of the story (the watchdog kill and the scheduled restart between the two
 * processes) is added in systemd 252's exact wording, as PID 1 logs it (_PID=1, UNIT=). Debian's
 * systemd-journal-remote turns it all (Journal Export Format) into a .journal file, and diagnose
 * reads that back through `journalctl --file -o json`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { sendLine } from '../agent/cli/ctl-command.js';
import type { DiagnoseReport, Problem } from '../agent/diagnose/analyze.js';
import { runDiagnoseCommand } from '../agent/diagnose/command.js';
import { REPO_ROOT, agentCommand } from './support/agent-process.js';

const JOURNAL_REMOTE_PATHS = ['/lib/systemd/systemd-journal-remote', '/usr/lib/systemd/systemd-journal-remote'];
const AGENT = 'charger-agent.service';
const BOOT_ID = '3f0c7d4a9b2e4c1d8e6f5a4b3c2d1e0f';
const WAIT_MS = 30_000;

/** Fast meter timings, and a short QoS window so that a short silence shows in the link quality. */
const CONFIG = `meter:
  timeoutMs: 100
  retries: 0
  pollIntervalMs: 200
  backoffInitialMs: 200
  backoffMaxMs: 400
  qosWindowMs: 2000
`;

interface JournalEntry {
  atMs: number;
  fields: Record<string, string>;
}

/** The real agent, with every stdout line kept verbatim with the time it arrived. */
class RecordedAgent {
  readonly lines: Array<{ atMs: number; text: string; event?: string; fields: Record<string, unknown> }> = [];
  readonly exited: Promise<void>;
  healthPort = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const json = /^<[0-7]>(\{.*\})$/.exec(text)?.[1];
      const { event, ...fields } = json ? (JSON.parse(json) as { event?: string }) : {};
      this.lines.push({ atMs: Date.now(), text, ...(event ? { event } : {}), fields });
      for (const wake of this.waiters) wake();
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(stateDir: string, configFile: string): Promise<RecordedAgent> {
    const env = { ...process.env };
    for (const key of Object.keys(env)) if (key.startsWith('CHARGER_') || key === 'NOTIFY_SOCKET' || key === 'WATCHDOG_USEC') delete env[key];
    const args = [...agentCommand(), 'run', '--config', configFile, '--hardware', 'sim', '--health-host', '127.0.0.1', '--health-port', '0', '--http-port', '0'];
    // Kafka on a port where nothing listens: the link goes down at once and stays down.
    args.push('--kafka-brokers', '127.0.0.1:1', '--mqtt-url', '', '--state-dir', stateDir);
    const agent = new RecordedAgent(spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] }));
    const ready = await agent.waitFor('agent_ready');
    agent.healthPort = Number(String(ready.health).split(':').pop());
    return agent;
  }

  /** The fields of the first line with this event (and matching fields) that arrived or arrives. */
  waitFor(event: string, match: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const find = () => this.lines.find((line) => line.event === event && Object.entries(match).every(([key, value]) => line.fields[key] === value));
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = find();
        if (!line) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(line.fields);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${event} ${JSON.stringify(match)} within ${WAIT_MS} ms; lines:\n${this.lines.map((l) => l.text).join('\n')}`));
      }, WAIT_MS);
      this.waiters.add(check);
      check();
    });
  }

  async send(line: string): Promise<void> {
    const reply = await sendLine('127.0.0.1', this.healthPort, line, 5000);
    assert.match(reply, /^ACK#/, `${line} → ${reply}`);
  }

  /** The lines as journald keeps them for the unit. */
  journalEntries(): JournalEntry[] {
    return this.lines.map(({ atMs, text }) => {
      const prefix = /^<([0-7])>/.exec(text);
      return {
        atMs,
        fields: {
          PRIORITY: prefix ? prefix[1]! : '6',
          MESSAGE: prefix ? text.slice(prefix[0].length) : text,
          SYSLOG_IDENTIFIER: 'charger-agent',
          _SYSTEMD_UNIT: AGENT,
          _PID: String(this.child.pid),
          _UID: '993',
          _TRANSPORT: 'stdout',
        },
      };
    });
  }
}

/** One message of PID 1 about a unit, as systemd 252 logs it. */
function managerLine(atMs: number, unit: string, priority: number, message: string): JournalEntry {
  return {
    atMs,
    fields: { PRIORITY: String(priority), MESSAGE: message, SYSLOG_IDENTIFIER: 'systemd', UNIT: unit, _SYSTEMD_UNIT: 'init.scope', _PID: '1', _UID: '0', _TRANSPORT: 'journal' },
  };
}

/** PID 1's account of a watchdog kill of pid and the restart after it, from atMs on. */
function watchdogKill(atMs: number, pid: number): JournalEntry[] {
  return [
    managerLine(atMs, AGENT, 3, `${AGENT}: Watchdog timeout (limit 10s)!`),
    managerLine(atMs + 1, AGENT, 5, `${AGENT}: Killing process ${pid} (node) with signal SIGABRT.`),
    managerLine(atMs + 40, AGENT, 5, `${AGENT}: Main process exited, code=dumped, status=6/ABRT`),
    managerLine(atMs + 41, AGENT, 4, `${AGENT}: Failed with result 'watchdog'.`),
    managerLine(atMs + 60, AGENT, 6, `${AGENT}: Scheduled restart job, restart counter is at 1.`),
    managerLine(atMs + 61, AGENT, 6, 'Stopped EV charge-point controller (charger-agent).'),
    managerLine(atMs + 62, AGENT, 6, 'Started EV charge-point controller (charger-agent).'),
  ];
}

/** Journal Export Format: KEY=value lines, a blank line after each entry. */
function exportFormat(entries: JournalEntry[]): string {
  const firstMs = Math.min(...entries.map((entry) => entry.atMs));
  return entries
    .map(({ atMs, fields }) => {
      const all = { __REALTIME_TIMESTAMP: String(atMs * 1000), __MONOTONIC_TIMESTAMP: String((atMs - firstMs + 5000) * 1000), _BOOT_ID: BOOT_ID, _HOSTNAME: 'cp-001', ...fields };
      for (const value of Object.values(all)) assert.ok(!value.includes('\n'), 'export format text fields are one line');
      return Object.entries(all).map(([key, value]) => `${key}=${value}\n`).join('') + '\n';
    })
    .join('');
}

async function journalRemote(): Promise<string> {
  for (const path of JOURNAL_REMOTE_PATHS) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  throw new Error(`systemd-journal-remote not found at ${JOURNAL_REMOTE_PATHS.join(' or ')} (apt-get install systemd-journal-remote)`);
}

async function writeJournal(file: string, entries: JournalEntry[]): Promise<void> {
  const child = spawn(await journalRemote(), [`--output=${file}`, '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  child.stdin.end(exportFormat(entries));
  assert.equal(await exited, 0, `systemd-journal-remote failed: ${stderr}`);
}

async function diagnose(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runDiagnoseCommand(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

/** The two agent runs and PID 1's lines between them; returns the journal's entries and marks. */
async function recordScenario(stateDir: string, configFile: string): Promise<{ entries: JournalEntry[]; killMs: number; restartedMs: number }> {
  const first = await RecordedAgent.start(stateDir, configFile);
  running.push(first);
  // A charge produces telemetry, which finds Kafka down.
  await first.send('AUTORIZAR_SUMINISTRO#DRIVER-42');
  await first.send('SIM#PLUG');
  await first.waitFor('kafka_down');
  await first.send('SIM#METER#SILENT');
  await first.waitFor('meter_down');
  await first.send('SIM#METER#BACK');
  await first.waitFor('meter_up');
  await first.send('SIM#UNPLUG');
  await first.waitFor('session_ended');
  await first.send('SIM#ESTOP#ON');
  await first.waitFor('fault_raised', { fault: 'emergency_stop' });
  await first.send('SIM#ESTOP#OFF');
  await first.send('SIM#RELAY#WELD');
  await first.waitFor('fault_raised', { fault: 'relay_welded' });
  // What a watchdog kill does to the process: gone, without a word.
  first.child.kill('SIGKILL');
  await first.exited;
  const killMs = Date.now();

  const second = await RecordedAgent.start(stateDir, configFile);
  running.push(second);
  const restartedMs = second.lines[0]!.atMs;
  // The undelivered telemetry of the first process meets the same dead broker.
  await second.waitFor('kafka_down');
  second.child.kill('SIGTERM');
  await second.exited;
  const unrelated = managerLine(killMs + 100, 'ssh.service', 4, "ssh.service: Failed with result 'exit-code'.");
  return { entries: [...first.journalEntries(), ...watchdogKill(killMs, first.child.pid!), unrelated, ...second.journalEntries()], killMs, restartedMs };
}

const running: RecordedAgent[] = [];
let dir: string;
let journal: string;
let report: DiagnoseReport;
let recorded: { entries: JournalEntry[]; killMs: number; restartedMs: number };

const problem = (kind: string): Problem => {
  const found = report.problems.find((candidate) => candidate.kind === kind);
  assert.ok(found, `no ${kind} in ${report.problems.map((p) => p.kind).join(', ')}`);
  return found;
};

before(async () => {
  await journalRemote();
  dir = await mkdtemp(join(tmpdir(), 'charger-agent-diagnose-'));
  const configFile = join(dir, 'config.yaml');
  await writeFile(configFile, CONFIG);
  recorded = await recordScenario(join(dir, 'state'), configFile);
  journal = join(dir, 'charger.journal');
  await writeJournal(journal, recorded.entries);
  const result = await diagnose(['--file', journal, '--json']);
  assert.equal(result.code, 0, result.stderr);
  report = JSON.parse(result.stdout) as DiagnoseReport;
});

after(async () => {
  for (const agent of running) agent.child.kill('SIGKILL');
  await Promise.all(running.map((agent) => agent.exited));
  await rm(dir, { recursive: true, force: true });
});

describe('charger-agent diagnose on a journal of the real agent', () => {
  it('reads the agent unit and nothing else', () => {
    assert.deepEqual(report.units, [AGENT]);
    assert.equal(report.entries, recorded.entries.length - 1);
    assert.ok(!JSON.stringify(report).includes('ssh.service'));
    assert.deepEqual(report.notes, []);
  });

  it('names the watchdog kill as critical', () => {
    const kill = problem('watchdog_kill');
    assert.equal(kill.severity, 'critical');
    assert.equal(kill.count, 1);
    assert.match(kill.evidence[0]!, /watchdog timeout \(limit 10s\); main process dumped, status 6\/ABRT; result 'watchdog'/);
  });

  it('names the restart as medium, after the watchdog kill', () => {
    const restart = problem('restart');
    assert.equal(restart.severity, 'medium');
    assert.equal(restart.count, 1);
    assert.match(restart.evidence[0]!, /restart counter 1 after systemd killed the agent: watchdog timeout/);
    const { starts, restarts, watchdogKills, crashes } = report.lifecycle;
    assert.deepEqual({ starts, restarts, watchdogKills, crashes }, { starts: 2, restarts: 1, watchdogKills: 1, crashes: 0 });
  });

  it('names faults by kind: the welded contactor critical, the emergency stop high', () => {
    assert.equal(problem('fault_relay_welded').severity, 'critical');
    assert.equal(problem('fault_emergency_stop').severity, 'high');
    assert.deepEqual(report.faults.map(({ fault }) => fault).sort(), ['emergency_stop', 'relay_welded']);
  });

  it('names the meter outage as high, with its duration, and the link quality it cost', () => {
    assert.equal(problem('meter_outage').severity, 'high');
    assert.equal(report.meter.outages.length, 1);
    const [outage] = report.meter.outages;
    assert.equal(outage!.end, 'up');
    assert.ok(outage!.durationMs > 0);
    assert.ok(report.meter.qos.some((period) => period.qosClass !== 'healthy'), JSON.stringify(report.meter.qos));
    assert.ok(report.problems.some((p) => p.kind === 'meter_qos_degraded' || p.kind === 'meter_qos_critical'));
  });

  it('names the broker outage as medium, in both processes', () => {
    assert.equal(problem('broker_outage_kafka').severity, 'medium');
    const kafka = report.brokers.outages.filter((outage) => outage.link === 'kafka');
    assert.deepEqual(kafka.map((outage) => outage.end), ['process_end', 'process_end']);
  });

  it('lists problems most severe first, each with causes and actions', () => {
    const order = ['critical', 'high', 'medium', 'low'];
    const ranks = report.problems.map((p) => order.indexOf(p.severity));
    assert.deepEqual(ranks, [...ranks].sort((x, y) => x - y));
    for (const p of report.problems) assert.ok(p.causes.length > 0 && p.actions.length > 0, p.kind);
  });

  it('passes --since to journalctl: the restarted process alone has no kill, fault or meter outage', async () => {
    const since = `@${Math.floor(recorded.restartedMs / 1000) + 1}`;
    const later = await diagnose(['--file', journal, '--since', since, '--json']);
    assert.equal(later.code, 0, later.stderr);
    const laterReport = JSON.parse(later.stdout) as DiagnoseReport;
    const kinds: string[] = laterReport.problems.map((p) => p.kind);
    for (const gone of ['watchdog_kill', 'restart', 'fault_relay_welded', 'meter_outage']) assert.ok(!kinds.includes(gone), kinds.join());
  });

  it('--unit narrows to the units asked for', async () => {
    const other = await diagnose(['--file', journal, '--unit', 'charger-monitor', '--json']);
    assert.equal(other.code, 0, other.stderr);
    const otherReport = JSON.parse(other.stdout) as DiagnoseReport;
    assert.equal(otherReport.entries, 0);
    assert.match(otherReport.notes.join(), /no journal entries/);
  });

  it('prints the same findings for a person', async () => {
    const text = await diagnose(['--file', journal]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^CRITICAL systemd killed the agent: watchdog timeout/m);
    assert.match(text.stdout, /^CRITICAL fault: contactor welded/m);
    assert.match(text.stdout, /^HIGH {5}the energy meter stopped answering/m);
    assert.match(text.stdout, /^MEDIUM {3}Kafka unreachable/m);
    assert.match(text.stdout, /^MEDIUM {3}systemd restarted the agent/m);
    assert.match(text.stdout, /probable causes: /);
    assert.match(text.stdout, /^Lifecycle: 2 starts, 1 restarts by systemd, 1 watchdog kills, 0 crashes$/m);
  });

  it('fails with a clear message when the journal file cannot be read', async () => {
    const missing = await diagnose(['--file', join(dir, 'nope.journal')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /JOURNALCTL_FAILED/);
  });
});
