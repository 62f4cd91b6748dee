// `charger-agent relay-safe`: the unit's ExecStopPost. A sysfs GPIO line keeps the level the agent
// left when it dies (SIGKILL, OOM kill, the watchdog's SIGABRT), so after every stop this drives the
// relay line to its open level again and logs one line saying what it did. It must work when the
// agent is what broke: it loads no node_modules, no schema, no store, only node:fs (and gpiod's tools
// for the character device), and reads gpio.relay from the config file itself (relay-pin.ts).
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveSysfsNumber } from '../../drivers/gpio/chip-base.js';
import { forceChardevLevel, type ChardevForceResult } from '../../drivers/gpio/chardev-force.js';
import type { Level } from '../../drivers/gpio/line.js';
import { forceSysfsLevel } from '../../drivers/gpio/sysfs-force.js';
import { DriverError } from '../../drivers/types.js';
import { EXIT } from '../cli/exit-codes.js';
import { LOG_EVENTS } from '../logging/events.js';
import { createLogger, type LogFields, type Logger } from '../logging/logger.js';
import { relayPinFromConfig, RelayPinError, type RelayPin } from './relay-pin.js';

export const RELAY_SAFE_HELP = `Usage: charger-agent relay-safe [--config FILE] [--check]

Drives the relay line (gpio.relay in the config) to its open level through sysfs GPIO, exporting it
if needed, or through the GPIO character device (gpioset) when sysfs cannot. The service runs it as
ExecStopPost, after every stop or death of the agent. Loads nothing but the config file.

  --config FILE   the agent's config (default: CHARGER_CONFIG)
  --check         resolve the line and say what would be done, without touching it

Exit codes: 0 driven open (or no relay configured), 1 the line could not be driven, 2 usage error,
78 the config cannot be read.`;

type SysfsOutcome = LogFields & { outcome: 'driven' | 'absent' | 'failed' };

function openLevel(pin: RelayPin): Level {
  return pin.activeLow ? 1 : 0;
}

/** The chip label and offset for the character device: from the config, or from the sysfs chip. */
function chardevAddress(pin: RelayPin): { label: string; offset: number } | undefined {
  if (pin.chip !== undefined && pin.line !== undefined) return { label: pin.chip, offset: pin.line };
  return undefined;
}

function viaSysfs(pin: RelayPin, level: Level): SysfsOutcome {
  if (!existsSync(pin.sysfsRoot)) return { outcome: 'absent', detail: `${pin.sysfsRoot} does not exist` };
  try {
    const sysfs = resolveSysfsNumber(pin, pin.sysfsRoot, 'gpio.relay');
    const result = forceSysfsLevel(pin.sysfsRoot, sysfs, level);
    return { outcome: 'driven', ...result };
  } catch (error) {
    return { outcome: 'failed', code: error instanceof DriverError ? error.code : undefined, detail: (error as Error).message };
  }
}

function viaChardev(pin: RelayPin, level: Level): ChardevForceResult | { outcome: 'failed'; detail: string; code?: string } {
  const address = chardevAddress(pin);
  if (!address) return { outcome: 'unavailable', detail: 'gpio.relay is a raw sysfs number; the character device needs chip and line' };
  try {
    return forceChardevLevel(address.label, address.offset, level);
  } catch (error) {
    return { outcome: 'failed', code: error instanceof DriverError ? error.code : undefined, detail: (error as Error).message };
  }
}

/** What systemd tells ExecStopPost about the stop: why the service ended. */
function serviceEnd(env: NodeJS.ProcessEnv): LogFields {
  return { service_result: env.SERVICE_RESULT, exit_code: env.EXIT_CODE, exit_status: env.EXIT_STATUS };
}

function readPin(file: string): RelayPin | undefined {
  return relayPinFromConfig(readFileSync(file, 'utf8'));
}

function check(log: Logger, pin: RelayPin): number {
  const level = openLevel(pin);
  const fields: LogFields = { ...pin, open_level: level };
  if (existsSync(pin.sysfsRoot)) {
    try {
      fields.sysfs = resolveSysfsNumber(pin, pin.sysfsRoot, 'gpio.relay');
    } catch (error) {
      log.err(LOG_EVENTS.relayForceOpenFailed, { ...fields, check: true, detail: (error as Error).message });
      return EXIT.failure;
    }
  }
  log.info(LOG_EVENTS.relaySafeChecked, fields);
  return EXIT.ok;
}

export async function runRelaySafeCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values;
  try {
    values = parseArgs({ args: argv, options: { config: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (error) {
    process.stderr.write(`charger-agent relay-safe: ${(error as Error).message}\n\n${RELAY_SAFE_HELP}\n`);
    return EXIT.usage;
  }
  if (values.help) {
    process.stdout.write(RELAY_SAFE_HELP + '\n');
    return EXIT.ok;
  }
  const startedMs = performance.now();
  const log = createLogger();
  const file = values.config ?? env.CHARGER_CONFIG;
  let pin: RelayPin | undefined;
  try {
    pin = file ? readPin(file) : undefined;
  } catch (error) {
    const code = error instanceof RelayPinError ? error.code : 'CONFIG_UNREADABLE';
    log.crit(LOG_EVENTS.relayForceOpenFailed, { code, config: file, detail: (error as Error).message, ...serviceEnd(env) });
    return EXIT.config;
  }
  if (!pin) {
    log.info(LOG_EVENTS.relaySafeSkipped, { reason: 'no gpio.relay in the config: no relay line to drive', config: file });
    return EXIT.ok;
  }
  if (values.check) return check(log, pin);

  const level = openLevel(pin);
  const sysfs = viaSysfs(pin, level);
  // A line held through sysfs is busy on the character device: only try it when sysfs did not drive it.
  const chardev = sysfs.outcome === 'driven' ? { outcome: 'not_needed' } : viaChardev(pin, level);
  const driven = sysfs.outcome === 'driven' || chardev.outcome === 'driven';
  const fields: LogFields = {
    relay: pin.chip !== undefined ? `${pin.chip} ${pin.line}` : `sysfs ${pin.sysfs}`,
    active_low: pin.activeLow,
    open_level: level,
    via: [sysfs.outcome === 'driven' && 'sysfs', chardev.outcome === 'driven' && 'chardev'].filter(Boolean),
    sysfs,
    chardev,
    ...serviceEnd(env),
    took_ms: Math.round((performance.now() - startedMs) * 10) / 10,
  };
  if (!driven) {
    log.crit(LOG_EVENTS.relayForceOpenFailed, fields);
    return EXIT.failure;
  }
  // After a clean stop this is routine; after a kill it is what kept the contactor from staying closed.
  log.log(env.SERVICE_RESULT === undefined || env.SERVICE_RESULT === 'success' ? 'notice' : 'warning', LOG_EVENTS.relayForcedOpen, fields);
  return EXIT.ok;
}
