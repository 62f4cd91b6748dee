// `charger-agent run`: the daemon. Config errors exit 78 (systemd does not restart-loop on them),
// GPIO it cannot reach exits 1 with the fix (systemd retries), SIGTERM/SIGINT stop cleanly with
// exit 0 within 5 s.
import { parseArgs } from 'node:util';
import { DriverError } from '../../drivers/types.js';
import { Agent } from '../controller.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { RUN_FLAGS, envName, flagHelp } from '../config/flags.js';
import type { Config } from '../config/schema.js';
import { runDemo } from '../demo.js';
import type { HardwareSetup } from '../hardware.js';
import { LOG_EVENTS } from '../logging/events.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { EXIT, startFailureExit } from './exit-codes.js';

/** Shutdown must finish before systemd's stop timeout; the relay is opened first thing anyway. */
const FORCED_EXIT_MS = 4500;

export const RUN_HELP = `Usage: charger-agent run [--config FILE] [--demo] [options]

Runs the charge-point agent: relay and inputs, meter, charging sessions, the TCP health/command
port, HTTP /health and /metrics, telemetry to the local ledger, Kafka and MQTT.
Every option is also an env variable CHARGER_<NAME> (e.g. --health-port → ${envName('health-port')});
flags override env, env overrides the config file (YAML; CHARGER_CONFIG names it too).

  --config FILE                  YAML (or JSON) config file
  --demo                         scripted sessions on simulated hardware, looping
${flagHelp(RUN_FLAGS)}

Exit codes: 0 stopped cleanly, 1 runtime failure (GPIO access included: systemd retries),
2 usage error, 78 bad configuration (GPIO pins included).`;

function parseRunArgs(argv: string[]) {
  const options = Object.fromEntries(RUN_FLAGS.map((spec) => [spec.flag, { type: 'string' as const }]));
  return parseArgs({
    args: argv,
    options: { ...options, config: { type: 'string' }, demo: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
}

/** Loads the config, or logs every problem (one line each) and returns undefined. */
export function loadConfigOrReport(log: Logger, sources: Parameters<typeof loadConfig>[0]): Config | undefined {
  try {
    return loadConfig(sources);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) log.err(LOG_EVENTS.configInvalid, { problem });
    log.err(LOG_EVENTS.configInvalid, { problems: error.problems.length, exit: EXIT.config });
    return undefined;
  }
}

/** `hardware`: drivers built by the caller (a test's GPIO on a fake sysfs tree); default from the config. */
export async function runRunCommand(argv: string[], injected: { hardware?: HardwareSetup } = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseRunArgs(argv);
  } catch (error) {
    process.stderr.write(`charger-agent run: ${(error as Error).message}\n\n${RUN_HELP}\n`);
    return EXIT.usage;
  }
  const { config: file, demo, help, ...flags } = parsed.values;
  if (help) {
    process.stdout.write(RUN_HELP + '\n');
    return EXIT.ok;
  }
  const log = createLogger();
  const config = loadConfigOrReport(log, { file, flags: flags as Record<string, string>, env: process.env });
  if (!config) return EXIT.config;
  if (demo && config.hardware === 'pi') {
    process.stderr.write('charger-agent run: --demo drives simulated hardware; use --hardware sim\n');
    return EXIT.usage;
  }
  if (demo) config.hardware = 'sim';

  const agent = new Agent({ config, log, hardware: injected.hardware, onFatal: (error) => void fail(agent, log, error), onRestart: (kind) => void restart(agent, log, kind) });
  installCrashHandlers(agent, log);
  try {
    await agent.start();
  } catch (error) {
    await agent.stop('start_failed').catch(() => undefined);
    if (error instanceof DriverError && error.code.startsWith('GPIO_')) {
      const exit = startFailureExit(error.code);
      const next = exit === EXIT.config ? 'fix the gpio settings; systemd will not restart the agent' : 'systemd starts the agent again';
      log.err(LOG_EVENTS.hardwareUnavailable, { code: error.code, error: error.message, exit, next });
      return exit;
    }
    log.err('start_failed', { error: error instanceof Error ? error.message : String(error) });
    return EXIT.failure;
  }

  const stopDemo = new AbortController();
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      stopDemo.abort();
      setTimeout(() => {
        log.warning('shutdown_forced', { after_ms: FORCED_EXIT_MS });
        process.exit(EXIT.ok);
      }, FORCED_EXIT_MS).unref();
      agent.stop(signal).then(() => resolve(EXIT.ok), () => resolve(EXIT.failure));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  if (demo) runDemo(agent, config, stopDemo.signal).catch((error) => log.err('demo_failed', { error }));
  return stopped;
}

async function fail(agent: Agent, log: Logger, error: unknown): Promise<never> {
  agent.emergencyOpen();
  log.crit('hardware_lost', { error: error instanceof Error ? error.message : String(error) });
  await agent.stop('hardware_lost').catch(() => undefined);
  process.exit(EXIT.failure);
}

/** OCPP Reset: soft stops cleanly (sessions ended, queues flushed) and exits 75; hard opens the relay and exits 1 within a second. */
async function restart(agent: Agent, log: Logger, kind: 'soft' | 'hard'): Promise<never> {
  const exit = kind === 'soft' ? EXIT.restart : EXIT.failure;
  log.notice(LOG_EVENTS.restartRequested, { kind, exit });
  if (kind === 'hard') agent.emergencyOpen();
  const stopped = agent.stop(`ocpp_${kind}_reset`).catch(() => undefined);
  if (kind === 'hard') await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 1000))]);
  else await stopped;
  process.exit(exit);
}

function installCrashHandlers(agent: Agent, log: Logger): void {
  const crash = (error: unknown) => {
    agent.emergencyOpen(); // first: the relay opens before anything else can go wrong
    log.crit(LOG_EVENTS.unhandledError, { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(EXIT.failure);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}
