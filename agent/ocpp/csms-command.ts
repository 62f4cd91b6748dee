// `charger-agent csms`: a development CSMS (OCPP 1.6J, strict schema validation) to try the agent's
// OCPP client against: prints every message it receives, one line each, and takes commands on stdin.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { EXIT } from '../cli/exit-codes.js';
import { DevCsms } from './dev-csms.js';

export const CSMS_HELP = `Usage: charger-agent csms [--host H] [--port N] [--password P]

A development OCPP 1.6J central system on ws://H:N/ (default 127.0.0.1:8180). Point the agent at it:
  charger-agent run --demo --ocpp-url ws://127.0.0.1:8180/ocpp
Every call and answer is validated against the official OCPP 1.6 JSON schemas (ocpp-rpc strict mode).
Commands on stdin:
  start <idTag>            RemoteStartTransaction
  stop [transactionId]     RemoteStopTransaction (default: the last started transaction)
  unavailable | available  ChangeAvailability Inoperative / Operative
  reset soft|hard          Reset
  trigger <Message>        TriggerMessage (StatusNotification, MeterValues, Heartbeat, BootNotification)
  get [key]                GetConfiguration
  set <key> <value>        ChangeConfiguration`;

export async function runCsmsCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { host: { type: 'string' }, port: { type: 'string' }, password: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    process.stderr.write(`charger-agent csms: ${(error as Error).message}\n\n${CSMS_HELP}\n`);
    return EXIT.usage;
  }
  if (values.help) {
    process.stdout.write(CSMS_HELP + '\n');
    return EXIT.ok;
  }
  const print = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const csms = new DevCsms({
    password: values.password,
    onConnect: (identity) => print(`connected ${identity}`),
    onMessage: (m) => print(`${m.identity} → ${m.action} ${JSON.stringify(m.params)}`),
    onValidationFailure: (f) => print(`INVALID ${f.identity} ${f.action}: ${f.error}`),
  });
  const port = await csms.listen(Number(values.port ?? 8180), values.host ?? '127.0.0.1');
  print(`csms listening on ws://${values.host ?? '127.0.0.1'}:${port}/ — type a command (help for the list)`);

  const commands: Record<string, (args: string[]) => [string, Record<string, unknown>] | undefined> = {
    start: ([idTag]) => (idTag ? ['RemoteStartTransaction', { idTag, connectorId: 1 }] : undefined),
    stop: ([id]) => ['RemoteStopTransaction', { transactionId: Number(id ?? csms.lastTransactionId ?? 0) }],
    unavailable: () => ['ChangeAvailability', { connectorId: 0, type: 'Inoperative' }],
    available: () => ['ChangeAvailability', { connectorId: 0, type: 'Operative' }],
    reset: ([type]) => ['Reset', { type: type === 'hard' ? 'Hard' : 'Soft' }],
    trigger: ([message]) => (message ? ['TriggerMessage', { requestedMessage: message }] : undefined),
    get: (keys) => ['GetConfiguration', keys.length > 0 ? { key: keys } : {}],
    set: ([key, value]) => (key && value !== undefined ? ['ChangeConfiguration', { key, value }] : undefined),
  };
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const [word, ...args] = line.trim().split(/\s+/);
    if (!word) return;
    const request = commands[word]?.(args);
    if (!request) return print(CSMS_HELP.split('\n').slice(5).join('\n'));
    csms.call(...request).then(
      (answer) => print(`← ${request[0]} ${JSON.stringify(answer)}`),
      (error: Error) => print(`← ${request[0]} failed: ${error.message}`),
    );
  });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  input.close();
  await csms.close();
  return EXIT.ok;
}
