// The line protocol the central system's Monitor already speaks, parsed into requests.
// Wire format kept from the original Engine: STATUS? / HEALTH_CHECK → OK | KO,
// AUTORIZAR_SUMINISTRO#<driver>, PARAR, REANUDAR → ACK#<CMD> | NACK#<CMD>#<REASON>.

export type Request =
  | { kind: 'status' }
  | { kind: 'info' }
  | { kind: 'authorize'; driverId: string }
  | { kind: 'stop' }
  | { kind: 'resume' }
  | { kind: 'reset' }
  | { kind: 'sim'; injection: string; args: string[] }
  | { kind: 'unknown' };

export const MAX_LINE_BYTES = 256;

/** The wire name of each command request, used in ACK#/NACK# replies. */
export const WIRE_NAME = {
  authorize: 'AUTORIZAR_SUMINISTRO',
  stop: 'PARAR',
  resume: 'REANUDAR',
  reset: 'RESET',
  sim: 'SIM',
} as const;

const SIMPLE: Record<string, Request> = {
  'STATUS?': { kind: 'status' },
  HEALTH_CHECK: { kind: 'status' },
  INFO: { kind: 'info' },
  PARAR: { kind: 'stop' },
  REANUDAR: { kind: 'resume' },
  RESET: { kind: 'reset' },
};

export function parseRequest(line: string): Request {
  const text = line.trim();
  const simple = SIMPLE[text];
  if (simple) return simple;
  const [head, ...rest] = text.split('#');
  if (head === WIRE_NAME.authorize && rest.length > 0) return { kind: 'authorize', driverId: rest.join('#') };
  if (head === WIRE_NAME.sim && rest.length > 0 && rest[0]) {
    return { kind: 'sim', injection: rest[0].toLowerCase(), args: rest.slice(1).map((a) => a.toLowerCase()) };
  }
  return { kind: 'unknown' };
}

/** Requests that change the charge point: accepted only from allowed peers. */
export function changesState(request: Request): boolean {
  return request.kind !== 'status' && request.kind !== 'info' && request.kind !== 'unknown';
}

export function ack(kind: keyof typeof WIRE_NAME, detail?: string): string {
  return detail ? `ACK#${WIRE_NAME[kind]}#${detail}` : `ACK#${WIRE_NAME[kind]}`;
}

export function nack(name: string, reason: string): string {
  return `NACK#${name}#${reason}`;
}

export const REPLY = {
  unknown: 'NACK#UNKNOWN_COMMAND',
  lineTooLong: 'NACK#LINE_TOO_LONG',
  forbidden: (request: Request) => nack(request.kind in WIRE_NAME ? WIRE_NAME[request.kind as keyof typeof WIRE_NAME] : 'COMMAND', 'FORBIDDEN'),
  internalError: 'NACK#INTERNAL_ERROR',
};

/** Whether a reply means success, for `ctl`'s exit code. */
export function isPositive(reply: string): boolean {
  return reply === 'OK' || reply.startsWith('ACK#') || reply.startsWith('{');
}
