// One line of `journalctl -o json` as diagnose needs it. journald keeps the agent's stdout line in
// MESSAGE without its `<N>` prefix, which becomes PRIORITY; PID 1's messages about the unit carry
// UNIT= (and _PID=1, _SYSTEMD_UNIT=init.scope).

export interface DiagnoseEntry {
  timeMs: number;
  /** The unit the line is about, e.g. charger-agent.service; "" when unknown. */
  unit: string;
  /** "app": our process's own output; "manager": systemd (PID 1) about the unit. */
  source: 'app' | 'manager';
  /** Syslog priority, 0 (emerg) .. 7 (debug). */
  priority: number;
  message: string;
  /** Our log event name, when MESSAGE is one of our `{"event":…}` lines. */
  event?: string;
  /** The other fields of that line. */
  fields: Record<string, unknown>;
  pid?: number;
  bootId?: string;
}

type JournalRecord = Record<string, unknown>;

/** A journal field as text: journalctl gives non-UTF-8 or binary values as byte arrays, repeated fields as arrays. */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'number')) return Buffer.from(value as number[]).toString('utf8');
  if (Array.isArray(value) && value.length > 0) return text(value[0]);
  return undefined;
}

function integer(value: unknown): number | undefined {
  const raw = text(value);
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

const PRIORITY_PREFIX = /^<([0-7])>/;
const UNIT_PREFIX = /^([\w@.:-]+\.(?:service|scope|socket|timer)): /;

/** Our `{"event":…}` line, if it is one; a `<N>` prefix is tolerated (text copied from a terminal or file). */
export function parseEventLine(message: string): { priority?: number; event: string; fields: Record<string, unknown> } | undefined {
  const prefix = PRIORITY_PREFIX.exec(message);
  const body = prefix ? message.slice(prefix[0].length) : message;
  if (!body.startsWith('{"event":')) return undefined;
  try {
    const { event, ...fields } = JSON.parse(body) as { event?: unknown } & Record<string, unknown>;
    if (typeof event !== 'string') return undefined;
    return { ...(prefix ? { priority: Number(prefix[1]) } : {}), event, fields };
  } catch {
    return undefined;
  }
}

export function parseJournalRecord(record: JournalRecord): DiagnoseEntry | undefined {
  const message = text(record.MESSAGE);
  const timeUs = integer(record.__REALTIME_TIMESTAMP) ?? integer(record._SOURCE_REALTIME_TIMESTAMP);
  if (message === undefined || timeUs === undefined) return undefined;
  const pid = integer(record._PID);
  const bootId = text(record._BOOT_ID);
  const fromManager = pid === 1 || (text(record.SYSLOG_IDENTIFIER) === 'systemd' && text(record.UNIT) !== undefined);
  const unit = fromManager
    ? (text(record.UNIT) ?? text(record.USER_UNIT) ?? UNIT_PREFIX.exec(message)?.[1] ?? '')
    : (text(record._SYSTEMD_UNIT) ?? text(record._SYSTEMD_USER_UNIT) ?? '');
  const parsed = fromManager ? undefined : parseEventLine(message);
  return {
    timeMs: Math.floor(timeUs / 1000),
    unit,
    source: fromManager ? 'manager' : 'app',
    priority: integer(record.PRIORITY) ?? parsed?.priority ?? 6,
    message,
    ...(parsed ? { event: parsed.event } : {}),
    fields: parsed?.fields ?? {},
    ...(pid !== undefined ? { pid } : {}),
    ...(bootId !== undefined ? { bootId } : {}),
  };
}

/** One line of `journalctl -o json`; undefined for a blank or foreign line. */
export function parseJournalLine(line: string): DiagnoseEntry | undefined {
  if (!line.trim()) return undefined;
  try {
    const record: unknown = JSON.parse(line);
    return record && typeof record === 'object' ? parseJournalRecord(record as JournalRecord) : undefined;
  } catch {
    return undefined;
  }
}
