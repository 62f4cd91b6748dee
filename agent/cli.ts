// charger-agent: one binary, several commands. Each command loads only what it needs.
import { EXIT } from './cli/exit-codes.js';
import { VERSION } from './version.js';

type Command = (argv: string[]) => Promise<number>;

interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

const COMMANDS: CommandEntry[] = [
  { name: 'run', summary: 'run the agent (what the systemd service runs)', load: async () => (await import('./cli/run-command.js')).runRunCommand },
  { name: 'ctl', summary: 'send one protocol line to a running agent, or drive its simulated hardware', load: async () => (await import('./cli/ctl-command.js')).runCtlCommand },
  { name: 'monitor', summary: 'watch the agent and report engine failures to the central system', load: async () => (await import('./monitor/monitor-command.js')).runMonitorCommand },
  { name: 'sessions', summary: 'list the session ledger (the billing record)', load: async () => (await import('./telemetry/sessions-command.js')).runSessionsCommand },
  { name: 'diagnose', summary: 'read the journal and report problems with severity, causes and actions', load: async () => (await import('./diagnose/command.js')).runDiagnoseCommand },
  { name: 'relay-safe', summary: 'drive the relay line open (the unit\'s ExecStopPost; loads no dependencies)', load: async () => (await import('./safety/relay-safe-command.js')).runRelaySafeCommand },
  { name: 'csms', summary: 'a development OCPP 1.6J central system to try the agent against', load: async () => (await import('./ocpp/csms-command.js')).runCsmsCommand },
  { name: 'meter-sim', summary: 'run the Modbus RTU meter simulator on a serial path', load: async () => (await import('../drivers/meter/simulator-cli.js')).runMeterSim },
];

export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
  return `charger-agent ${VERSION} — EV charge-point controller

Usage: charger-agent <command> [options]     (charger-agent <command> --help for its options)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 78 bad configuration.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topLevelHelp() + '\n');
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version') {
    process.stdout.write(VERSION + '\n');
    return EXIT.ok;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`charger-agent: unknown command "${name}"\n\n${topLevelHelp()}\n`);
    return EXIT.usage;
  }
  return (await entry.load())(rest);
}

const code = await main(process.argv.slice(2));
process.exit(code);
