// `charger-agent ctl`: sends one protocol line to a running agent and prints the reply.
// Words for people (`ctl authorize D1`, `ctl plug`), raw protocol lines for scripts (`ctl 'STATUS?'`).
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { isPositive } from '../protocol/commands.js';
import { EXIT } from './exit-codes.js';

const WORDS: Record<string, (args: string[]) => string | undefined> = {
  status: () => 'STATUS?',
  health: () => 'HEALTH_CHECK',
  info: () => 'INFO',
  authorize: ([driver]) => (driver ? `AUTORIZAR_SUMINISTRO#${driver}` : undefined),
  stop: () => 'PARAR',
  resume: () => 'REANUDAR',
  reset: () => 'RESET',
};

const SIM_WORDS = ['plug', 'unplug', 'fault', 'recover', 'estop', 'meter', 'relay', 'power'];

export const CTL_HELP = `Usage: charger-agent ctl [--host H] [--port N] [--timeout-ms N] <command…>

Sends one line to the agent's TCP port and prints the reply.
Exit 0 on OK/ACK, 1 on KO/NACK or no answer, 2 on a usage error.

Commands:
  status                 STATUS?  → OK | KO
  health                 HEALTH_CHECK
  info                   INFO → one line of JSON
  authorize <driver>     AUTORIZAR_SUMINISTRO#<driver>
  stop                   PARAR (end any supply, out of service)
  resume                 REANUDAR (back in service)
  reset                  RESET (clear a latched relay fault once its cause is gone)
Simulated hardware (--hardware sim):
  plug | unplug          a vehicle plugs in / unplugs
  fault | recover        an external protection device trips / resets
  estop on|off           the emergency stop
  meter silent|back      the meter stops / resumes answering
  relay weld|stick|normal  contactor welded closed / stuck open / healthy
  power <W>              the power the vehicle draws
Anything else is sent as a raw protocol line, e.g. ctl 'STATUS?'.

Options:
  --host H        default 127.0.0.1
  --port N        default $CHARGER_HEALTH_PORT or 5001
  --timeout-ms N  default 3000`;

export function lineFor(words: string[]): string | undefined {
  const [first, ...rest] = words;
  if (!first) return undefined;
  const word = WORDS[first];
  if (word) return word(rest);
  if (SIM_WORDS.includes(first)) return ['SIM', first.toUpperCase(), ...rest.map((a) => a.toUpperCase())].join('#');
  return words.join(' ');
}

export function sendLine(host: string, port: number, line: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(line + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.end();
      resolve(buffer.slice(0, end).replace(/\r$/, ''));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the agent at ${host}:${port}: ${(error as NodeJS.ErrnoException).code ?? error.message}`));
    });
  });
}

export async function runCtlCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { host: { type: 'string' }, port: { type: 'string' }, 'timeout-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    process.stderr.write(`charger-agent ctl: ${(error as Error).message}\n\n${CTL_HELP}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(CTL_HELP + '\n');
    return EXIT.ok;
  }
  const line = lineFor(positionals);
  const port = Number(values.port ?? process.env.CHARGER_HEALTH_PORT ?? 5001);
  const timeoutMs = Number(values['timeout-ms'] ?? 3000);
  if (!line || !Number.isInteger(port) || port <= 0 || port > 65535 || !(timeoutMs > 0)) {
    process.stderr.write(`charger-agent ctl: ${line ? 'bad --port or --timeout-ms' : 'missing or incomplete command'}\n\n${CTL_HELP}\n`);
    return EXIT.usage;
  }
  try {
    const reply = await sendLine(values.host ?? '127.0.0.1', port, line, timeoutMs);
    process.stdout.write(reply + '\n');
    return isPositive(reply) ? EXIT.ok : EXIT.failure;
  } catch (error) {
    process.stderr.write(`charger-agent ctl: ${(error as Error).message}\n`);
    return EXIT.failure;
  }
}
