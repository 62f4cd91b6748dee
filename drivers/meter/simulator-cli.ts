// `charger-agent meter-sim`: a simulated Eastron meter on a serial port (a pty from socat, or a real
// RS-485 adapter wired to the agent's), with an optional loopback control port.
import { parseArgs } from 'node:util';
import { REGISTER_MAPS, type MeterModel } from './registers.js';
import { seededRandom } from './seeded-random.js';
import { SerialPortTransport } from './serial-transport.js';
import { CONTROL_HELP, startControlServer, type ControlServer } from './sim-control.js';
import { loadSimState, SimStateSaver, STATE_SAVE_EVERY_MS } from './sim-state-file.js';
import { MeterSimulator } from './simulator.js';

export const METER_SIM_USAGE = `Usage: charger-agent meter-sim --path <tty> [options]

Answers Modbus RTU reads as an Eastron meter on <tty> until SIGINT or SIGTERM.
For a test bench without hardware: socat pty,raw,echo=0,link=/tmp/meter pty,raw,echo=0,link=/tmp/agent
then run the simulator on /tmp/meter and point meter.path at /tmp/agent.

Options:
  --path <tty>          serial device or pty to answer on (required)
  --model <m>           ${Object.keys(REGISTER_MAPS).join(' | ')} (default sdm630)
  --unit <n>            Modbus unit address 1..247 (default 1)
  --baud <n>            baud rate (default 9600)
  --parity <p>          none | even | odd (default none)
  --stop-bits <n>       1 | 2 (default 1)
  --power-w <W>         power drawn (default 7400)
  --import-kwh <kWh>    initial import register (default: the --state file's, else 1234.5)
  --state <file>        keep the import register in <file> across restarts (written atomically
                        every ${STATE_SAVE_EVERY_MS / 1000} s while it moves and at exit: a kill -9 loses at most that)
  --serial <n>          serial number in holding registers 0xFC00-0xFC01 (default 10000000 + unit)
  --refuse-gaps         answer exception 02 to reads that touch registers the model lacks
                        (default: they read as 0)
  --corrupt <0..1>      share of answers with a broken CRC (default 0)
  --drop <0..1>         share of requests left unanswered (default 0)
  --delay-ms <ms>       delay before each answer (default 0)
  --seed <n>            seed of the fault randomness (default: random)
  --control-port <n>    listen for control lines on 127.0.0.1:<n> (0 = any free port)
  -h, --help            this text

Control lines (nc 127.0.0.1 <port>):
${CONTROL_HELP.map((line) => `  ${line}`).join('\n')}
`;

const EXIT_USAGE = 64;
const EXIT_UNAVAILABLE = 69;

export interface MeterSimRunOptions {
  /** Ends the run (instead of SIGINT/SIGTERM). */
  signal?: AbortSignal;
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** Called once the simulator answers, with the control port when there is one. */
  onReady?: (info: { controlPort?: number; sim: MeterSimulator }) => void;
}

class UsageError extends Error {}

function numberOption(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const text = values[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function choice<T extends string>(values: Record<string, unknown>, name: string, allowed: readonly T[], fallback: T): T {
  const text = values[name];
  if (text === undefined) return fallback;
  if (!allowed.includes(text as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      path: { type: 'string' },
      model: { type: 'string' },
      unit: { type: 'string' },
      baud: { type: 'string' },
      parity: { type: 'string' },
      'stop-bits': { type: 'string' },
      'power-w': { type: 'string' },
      'import-kwh': { type: 'string' },
      state: { type: 'string' },
      serial: { type: 'string' },
      'refuse-gaps': { type: 'boolean' },
      corrupt: { type: 'string' },
      drop: { type: 'string' },
      'delay-ms': { type: 'string' },
      seed: { type: 'string' },
      'control-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  if (!values.path) throw new UsageError('--path is required');
  return {
    path: values.path,
    model: choice(values, 'model', Object.keys(REGISTER_MAPS) as MeterModel[], 'sdm630'),
    unit: numberOption(values, 'unit', 1, 1, 247),
    baud: numberOption(values, 'baud', 9600, 300, 4_000_000),
    parity: choice(values, 'parity', ['none', 'even', 'odd'] as const, 'none'),
    stopBits: Number(choice(values, 'stop-bits', ['1', '2'] as const, '1')) as 1 | 2,
    powerW: numberOption(values, 'power-w', 7400, 0, 1e6),
    importKwh: values['import-kwh'] === undefined ? undefined : numberOption(values, 'import-kwh', 0, 0, 1e8),
    statePath: values.state,
    serialNumber: values.serial === undefined ? undefined : numberOption(values, 'serial', 0, 0, 2 ** 32 - 1),
    refuseGaps: values['refuse-gaps'] === true,
    corrupt: numberOption(values, 'corrupt', 0, 0, 1),
    drop: numberOption(values, 'drop', 0, 0, 1),
    delayMs: numberOption(values, 'delay-ms', 0, 0, 600_000),
    seed: values.seed === undefined ? undefined : numberOption(values, 'seed', 0, 0, 2 ** 32 - 1),
    controlPort: values['control-port'] === undefined ? undefined : numberOption(values, 'control-port', 0, 0, 65_535),
  };
}

function untilStopped(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    if (signal) {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', stop, { once: true });
    } else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
}

/** Runs the simulator until stopped; resolves with the exit code. */
export async function runMeterSim(argv: string[], options: MeterSimRunOptions = {}): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = options.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  let settings: ReturnType<typeof parse>;
  try {
    settings = parse(argv);
  } catch (error) {
    err(`meter-sim: ${(error as Error).message}\n\n${METER_SIM_USAGE}`);
    return EXIT_USAGE;
  }
  if (!settings) {
    out(METER_SIM_USAGE);
    return 0;
  }
  let savedKwh: number | undefined;
  try {
    savedKwh = settings.statePath === undefined ? undefined : loadSimState(settings.statePath)?.importKwh;
  } catch (error) {
    err(`meter-sim: ${(error as Error).message}`);
    return EXIT_UNAVAILABLE;
  }
  const { baud, parity, stopBits } = settings;
  const sim = new MeterSimulator({
    transport: new SerialPortTransport({ path: settings.path, baud, parity, stopBits }),
    model: settings.model,
    unit: settings.unit,
    initialImportKwh: settings.importKwh ?? savedKwh ?? 1234.5,
    refuseGaps: settings.refuseGaps,
    setup: { baud, parity, stopBits, ...(settings.serialNumber === undefined ? {} : { serialNumber: settings.serialNumber }) },
    random: settings.seed === undefined ? Math.random : seededRandom(settings.seed),
    behaviour: { powerW: settings.powerW, corruptShare: settings.corrupt, dropShare: settings.drop, delayMs: settings.delayMs },
  });
  let control: ControlServer | undefined;
  const saver = settings.statePath === undefined ? undefined : new SimStateSaver(settings.statePath, () => sim.importRegisterKwh());
  try {
    await saver?.start();
    if (saver?.lastError) throw new Error(`SIM_STATE_UNWRITABLE: ${saver.lastError}`);
    await sim.start();
    if (settings.controlPort !== undefined) control = await startControlServer(sim, settings.controlPort);
  } catch (error) {
    err(`meter-sim: ${(error as Error).message}`);
    await sim.stop().catch(() => undefined);
    return EXIT_UNAVAILABLE;
  }
  const controlText = control ? `; control on 127.0.0.1:${control.port}` : '';
  const stateText = saver ? `; register ${sim.importRegisterKwh()} kWh kept in ${settings.statePath}` : '';
  out(`meter-sim: ${settings.model} unit ${settings.unit} answering on ${settings.path} at ${settings.baud} baud${controlText}${stateText}`);
  options.onReady?.({ controlPort: control?.port, sim });
  await untilStopped(options.signal);
  await control?.close();
  await sim.stop();
  const savedKwhAtExit = await saver?.stop();
  if (saver?.lastError) err(`meter-sim: the register could not be saved to ${settings.statePath}: ${saver.lastError}`);
  out(`meter-sim: stopped${saver ? ` with ${savedKwhAtExit} kWh saved in ${settings.statePath}` : ''}`);
  return 0;
}
