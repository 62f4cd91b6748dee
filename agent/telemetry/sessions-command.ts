// `charger-agent sessions [--json] [--state-dir DIR] [--limit N]`: the session ledger, newest first —
// a table for people, JSON (the wire's field names) for machines. Reads the database read-only, so it
// works while the daemon runs.
import { parseArgs } from 'node:util';
import { defaultStateDir } from '../config/schema.js';
import { readLedger, storePath, type LedgerSession } from './store.js';

const EX_OK = 0;
const EX_USAGE = 64;
const EX_NOINPUT = 66;
const EX_IOERR = 74;
const DEFAULT_LIMIT = 50;

export const SESSIONS_USAGE = `Usage: charger-agent sessions [--json] [--state-dir DIR] [--limit N]

Lists the charging sessions in the ledger, newest first.

  --json           one JSON array, for machines
  --state-dir DIR  the agent's state directory (default: $CHARGER_STATE_DIR, $STATE_DIRECTORY,
                   or ~/.local/state/charger-agent)
  --limit N        at most N sessions (default ${DEFAULT_LIMIT}; 0 = all)
  -h, --help       this help
`;

export interface CommandOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processOutput: CommandOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export async function runSessionsCommand(argv: string[], out: CommandOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: { json?: boolean; 'state-dir'?: string; limit?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        'state-dir': { type: 'string' },
        limit: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    out.stderr(`charger-agent sessions: ${(error as Error).message}\n\n${SESSIONS_USAGE}`);
    return EX_USAGE;
  }
  if (values.help) {
    out.stdout(SESSIONS_USAGE);
    return EX_OK;
  }
  const limit = values.limit === undefined ? DEFAULT_LIMIT : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 0) {
    out.stderr(`charger-agent sessions: --limit expects a whole number >= 0, got ${JSON.stringify(values.limit)}\n`);
    return EX_USAGE;
  }
  const stateDir = values['state-dir'] ?? env.CHARGER_STATE_DIR ?? defaultStateDir(env);
  let sessions: LedgerSession[] | undefined;
  try {
    sessions = readLedger(stateDir, limit === 0 ? -1 : limit);
  } catch (error) {
    out.stderr(`charger-agent sessions: cannot read the ledger ${storePath(stateDir)}: ${(error as Error).message}\n`);
    return EX_IOERR;
  }
  if (sessions === undefined) {
    out.stderr(`charger-agent sessions: no ledger at ${storePath(stateDir)} (has the agent run with --state-dir ${stateDir}?)\n`);
    return EX_NOINPUT;
  }
  out.stdout(values.json ? JSON.stringify(sessions.map(toWire), null, 2) + '\n' : table(sessions));
  return EX_OK;
}

/** The field names of the telemetry the central system already reads. */
function toWire(session: LedgerSession) {
  return {
    session_id: session.id,
    user_id: session.driverId,
    authorized_at: session.authorizedAt,
    started_at: session.startedAt ?? null,
    ended_at: session.endedAt ?? null,
    start_import_kwh: session.startImportKwh ?? null,
    end_import_kwh: session.lastImportKwh ?? null,
    kwh: session.kwh,
    importe: session.importe,
    reason: session.endReason ?? null,
    fault: session.fault ?? null,
    open: session.endedAt === undefined,
  };
}

const COLUMNS: Array<{ title: string; value: (session: LedgerSession) => string; right?: boolean }> = [
  { title: 'SESSION', value: (s) => s.id },
  { title: 'DRIVER', value: (s) => s.driverId },
  { title: 'AUTHORIZED (UTC)', value: (s) => clock(s.authorizedAt) },
  { title: 'STARTED', value: (s) => clock(s.startedAt) },
  { title: 'ENDED', value: (s) => (s.endedAt ? clock(s.endedAt) : 'open') },
  { title: 'KWH', value: (s) => s.kwh.toFixed(3), right: true },
  { title: 'IMPORTE', value: (s) => s.importe.toFixed(4), right: true },
  { title: 'REASON', value: (s) => [s.endReason, s.fault].filter(Boolean).join('/') || '-' },
];

function clock(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '-';
}

function table(sessions: LedgerSession[]): string {
  if (sessions.length === 0) return 'no sessions in the ledger yet\n';
  const cells = sessions.map((session) => COLUMNS.map((column) => column.value(session)));
  const widths = COLUMNS.map((column, index) => Math.max(column.title.length, ...cells.map((row) => row[index]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, index) => (COLUMNS[index]!.right ? cell.padStart(widths[index]!) : cell.padEnd(widths[index]!)))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS.map((column) => column.title)), ...cells.map(line)].join('\n') + '\n';
}
