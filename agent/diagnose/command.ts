// `charger-agent diagnose`: reads the journal through `journalctl -o json` (on the device, or from
// an exported .journal file) and prints what went wrong, as text or JSON.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { analyzeJournal, type DiagnoseReport } from './analyze.js';
import { formatReport } from './format-text.js';
import { parseJournalLine, type DiagnoseEntry } from './journal-entry.js';

export const DEFAULT_UNITS = ['charger-agent.service', 'charger-monitor.service'];

export const EXIT_OK = 0;
export const EXIT_JOURNAL_FAILED = 1;
export const EXIT_USAGE = 2;

export const DIAGNOSE_HELP = `usage: charger-agent diagnose [--unit U]... [--since T] [--until T] [--file JOURNAL]... [--json]

Reads the journal of the agent and its monitor and reports restarts and watchdog kills, faults by
kind, meter outages and link quality over time, broker outages and the telemetry backlog: each
problem with a severity (critical, high, medium, low), probable causes and recommended actions.

  --unit U       a unit to read (repeatable; default ${DEFAULT_UNITS.join(' and ')})
  --since T      from this time, as journalctl takes it: "2024-05-01 08:00", yesterday, or
                 relative as --since=-2h
  --until T      up to this time
  --file F       read an exported journal file instead of the system journal (repeatable);
                 e.g. journalctl -u charger-agent -o export | /lib/systemd/systemd-journal-remote -o F -
  --json         the report as JSON
  -h, --help     this text

Reading the system journal needs root or membership in the systemd-journal (or adm) group.
Exit status: 0 report printed, 1 journal unreadable, 2 usage error.
`;

export interface DiagnoseIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The journalctl binary; default journalctl on PATH. */
  journalctl?: string;
}

const processIo: DiagnoseIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export interface DiagnoseOptions {
  units: string[];
  since?: string;
  until?: string;
  files: string[];
  json: boolean;
}

export function parseDiagnoseArgs(argv: string[]): DiagnoseOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      unit: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      file: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const units = (values.unit ?? DEFAULT_UNITS).map((unit) => (unit.includes('.') ? unit : `${unit}.service`));
  return {
    units,
    ...(values.since !== undefined ? { since: values.since } : {}),
    ...(values.until !== undefined ? { until: values.until } : {}),
    files: values.file ?? [],
    json: values.json ?? false,
  };
}

export function journalctlArgs(options: DiagnoseOptions): string[] {
  return [
    '--output=json',
    '--no-pager',
    ...options.files.map((file) => `--file=${file}`),
    ...options.units.map((unit) => `--unit=${unit}`),
    ...(options.since !== undefined ? [`--since=${options.since}`] : []),
    ...(options.until !== undefined ? [`--until=${options.until}`] : []),
  ];
}

/** Runs journalctl and parses its output as it streams, keeping only what the analysis needs. */
export function readJournal(command: string, args: string[]): Promise<DiagnoseEntry[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_PAGER: '', LC_ALL: 'C.UTF-8' } });
    const entries: DiagnoseEntry[] = [];
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = parseJournalLine(line);
      if (entry) entries.push(entry);
    });
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'ENOENT' ? `JOURNALCTL_MISSING: ${command} not found (install systemd)` : `JOURNALCTL_FAILED: ${error.message}`)),
    );
    child.once('close', (code) => {
      if (code === 0) resolve(entries);
      else reject(new Error(`JOURNALCTL_FAILED: ${command} ${args.join(' ')} exited with ${code}: ${stderr.trim() || 'no message'}`));
    });
  });
}

export async function runDiagnoseCommand(argv: string[], io: DiagnoseIo = processIo): Promise<number> {
  let options: DiagnoseOptions | 'help';
  try {
    options = parseDiagnoseArgs(argv);
  } catch (error) {
    io.stderr(`charger-agent diagnose: ${(error as Error).message}\n\n${DIAGNOSE_HELP}`);
    return EXIT_USAGE;
  }
  if (options === 'help') {
    io.stdout(DIAGNOSE_HELP);
    return EXIT_OK;
  }
  let report: DiagnoseReport;
  try {
    report = analyzeJournal(await readJournal(io.journalctl ?? 'journalctl', journalctlArgs(options)));
  } catch (error) {
    io.stderr(`charger-agent diagnose: ${(error as Error).message}\n`);
    return EXIT_JOURNAL_FAILED;
  }
  io.stdout(options.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  return EXIT_OK;
}
