// One line per event for journald: `<N>{"event":"meter_stale","unit":1}` where N is the syslog
// priority, so `journalctl -p warning` filters and `diagnose` parses the fields. On a terminal the
// same event reads `17:58:01 warning meter_stale unit=1`.

export const PRIORITIES = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
} as const;

export type Priority = keyof typeof PRIORITIES;
export type LogFields = Record<string, unknown>;

export interface Logger {
  log(priority: Priority, event: string, fields?: LogFields): void;
  crit(event: string, fields?: LogFields): void;
  err(event: string, fields?: LogFields): void;
  warning(event: string, fields?: LogFields): void;
  notice(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  debug(event: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  write?: (line: string) => void;
  /** Human-readable lines instead of prefixed JSON. Default: stdout is a terminal. */
  pretty?: boolean;
  /** Lines less important than this are dropped. Default info, or CHARGER_LOG_LEVEL. */
  level?: Priority;
}

const SECRET_KEY = /pass(word)?|secret|token|credential|api[_-]?key|authorization/i;

export function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : value instanceof Error ? value.message : value;
  }
  return out;
}

function prettyValue(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

export function formatLine(priority: Priority, event: string, fields: LogFields, pretty: boolean): string {
  const safe = redact(fields);
  if (pretty) {
    const time = new Date().toISOString().slice(11, 19);
    const rest = Object.entries(safe).map(([k, v]) => `${k}=${prettyValue(v)}`).join(' ');
    return `${time} ${priority.padEnd(7)} ${event}${rest ? ' ' + rest : ''}`;
  }
  return `<${PRIORITIES[priority]}>${JSON.stringify({ event, ...safe })}`;
}

function levelFromEnv(): Priority {
  const wanted = process.env.CHARGER_LOG_LEVEL;
  return wanted && wanted in PRIORITIES ? (wanted as Priority) : 'info';
}

/** The shortcuts of a Logger around one `log` function. */
export function loggerFrom(log: Logger['log'], child: Logger['child']): Logger {
  return {
    log,
    crit: (event, fields) => log('crit', event, fields),
    err: (event, fields) => log('err', event, fields),
    warning: (event, fields) => log('warning', event, fields),
    notice: (event, fields) => log('notice', event, fields),
    info: (event, fields) => log('info', event, fields),
    debug: (event, fields) => log('debug', event, fields),
    child,
  };
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  const threshold = PRIORITIES[options.level ?? levelFromEnv()];
  const log = (priority: Priority, event: string, fields: LogFields = {}) => {
    if (PRIORITIES[priority] > threshold) return;
    write(formatLine(priority, event, { ...base, ...fields }, pretty));
  };
  return loggerFrom(log, (fields) => createLogger(options, { ...base, ...fields }));
}
