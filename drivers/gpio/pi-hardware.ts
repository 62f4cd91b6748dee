// The Raspberry Pi's relay and inputs over sysfs GPIO. Everything that can be checked without
// touching a line (config, chip lookup, duplicates) is checked first; then the relay line is
// opened already driving "open", then the inputs. A failure part-way releases what was opened,
// the relay first so it is left open.
import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DriverLogger } from '../logger.js';
import type { DigitalInput, PulseOutput, Relay } from '../types.js';
import { DriverError } from '../types.js';
import { resolveSysfsNumber } from './chip-base.js';
import { gpioErrorFromFs } from './errors.js';
import { createGpioInput, type Timers } from './input.js';
import { ONOFF_SYSFS_ROOT, openOnoffLine, type LineOpener } from './line.js';
import { createGpioPulseOutput, pulseIdleDirection } from './pulse-output.js';
import { createGpioRelay, relayOpenDirection } from './relay.js';
import type { GpioSettings, PinSettings } from './settings.js';

export interface PiGpio {
  relay: Relay;
  relayFeedback?: DigitalInput;
  plugPresent: DigitalInput;
  emergencyStop: DigitalInput;
  /** The protection device's auxiliary contact (RCD trip), where wired: active = tripped. */
  externalFault?: DigitalInput;
  /** The dead-man output (gpio.heartbeat), opened at its idle level. */
  heartbeat?: PulseOutput;
  /** Relay first (driven open), then the inputs. Safe to call twice. */
  release(): void;
}

export interface PiGpioOptions {
  /** The line transport; onoff by default, an in-memory line in tests. */
  openLine?: LineOpener;
  timers?: Timers;
}

type Role = 'relay' | 'heartbeat' | 'relayFeedback' | 'plugPresent' | 'emergencyStop' | 'externalFault';
type InputRole = Exclude<Role, 'relay' | 'heartbeat'>;

const REQUIRED: readonly Role[] = ['relay', 'plugPresent', 'emergencyStop'];
const INPUTS: readonly InputRole[] = ['relayFeedback', 'plugPresent', 'emergencyStop', 'externalFault'];

interface ResolvedPin {
  configPath: string;
  sysfs: number;
  activeLow: boolean;
}

/** Sysfs numbers of the configured pins, by role. */
export type ResolvedPins = Partial<Record<Role, number>>;

function requirePins(gpio: GpioSettings): void {
  const missing = REQUIRED.filter((role) => gpio[role] === undefined).map((role) => `gpio.${role}`);
  if (missing.length === 0) return;
  throw new DriverError(
    'GPIO_CONFIG',
    `--hardware pi needs ${missing.join(', ')}: set each to { chip, line } (e.g. chip: pinctrl-rp1, line: 17) or { sysfs }, or run with --hardware sim`,
    { missing },
  );
}

function resolvePins(gpio: GpioSettings): Map<Role, ResolvedPin> {
  requirePins(gpio);
  const pins = new Map<Role, ResolvedPin>();
  const roleBySysfs = new Map<number, Role>();
  for (const role of ['relay', 'heartbeat', ...INPUTS] as const) {
    const pin: PinSettings | undefined = gpio[role];
    if (!pin) continue;
    const configPath = `gpio.${role}`;
    const sysfs = resolveSysfsNumber(pin, gpio.sysfsRoot, configPath);
    const other = roleBySysfs.get(sysfs);
    if (other) {
      throw new DriverError('GPIO_CONFIG', `gpio.${other} and ${configPath} are both sysfs GPIO ${sysfs}; give each its own line`, { sysfs });
    }
    roleBySysfs.set(sysfs, role);
    pins.set(role, { configPath, sysfs, activeLow: pin.activeLow ?? false });
  }
  return pins;
}

function pinNumbers(pins: Map<Role, ResolvedPin>): ResolvedPins {
  return Object.fromEntries([...pins].map(([role, pin]) => [role, pin.sysfs]));
}

/** For the CLI before --hardware pi starts: config, chip lookup and write access to <root>/export.
 *  Throws the DriverError to print (and exit 78 on); returns the sysfs numbers to log. */
export function checkGpioAccess(gpio: GpioSettings): ResolvedPins {
  const pins = resolvePins(gpio);
  const exportPath = join(gpio.sysfsRoot, 'export');
  try {
    accessSync(exportPath, constants.W_OK);
  } catch (error) {
    throw gpioErrorFromFs(error, 'cannot export GPIO lines', exportPath);
  }
  return pinNumbers(pins);
}

function releaseAll(parts: Array<{ release(): void }>, log: DriverLogger): void {
  let first: unknown;
  for (const part of parts) {
    try {
      part.release();
    } catch (error) {
      log.err('gpio_release_failed', { error, code: error instanceof DriverError ? error.code : undefined });
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}

function openRelay(pin: ResolvedPin, openLine: LineOpener): Relay {
  const line = openLine(pin.sysfs, relayOpenDirection(pin.activeLow), 'none');
  const relay = createGpioRelay(line, pin.activeLow, pin.configPath);
  try {
    // Again, explicitly: onoff ignores a failed reconfiguration of a line that was already exported.
    relay.open();
  } catch (error) {
    line.release();
    throw error;
  }
  return relay;
}

/** Inputs whose change to active acts on its first edge: an e-stop press opens the relay now; only its release waits out bounces. */
export const ACTIVE_AT_FIRST_EDGE: ReadonlySet<string> = new Set(['gpio.emergencyStop', 'gpio.externalFault']);

function openInput(pin: ResolvedPin, gpio: GpioSettings, log: DriverLogger, options: PiGpioOptions & { openLine: LineOpener }): DigitalInput {
  const line = options.openLine(pin.sysfs, 'in', 'both');
  try {
    return createGpioInput(line, {
      activeLow: pin.activeLow,
      debounceMs: gpio.debounceMs,
      name: pin.configPath,
      timers: options.timers,
      activeAtFirstEdge: ACTIVE_AT_FIRST_EDGE.has(pin.configPath),
      onError: (error) => log.err('gpio_watch_failed', { input: pin.configPath, code: error.code, error }),
    });
  } catch (error) {
    line.release();
    throw error;
  }
}

/** Opens the relay (driven open) and the inputs of --hardware pi. */
export function createPiGpio(gpio: GpioSettings, log: DriverLogger, options: PiGpioOptions = {}): PiGpio {
  if (!options.openLine && resolve(gpio.sysfsRoot) !== ONOFF_SYSFS_ROOT) {
    throw new DriverError(
      'GPIO_CONFIG',
      `gpio.sysfsRoot is ${gpio.sysfsRoot} but the onoff driver always uses ${ONOFF_SYSFS_ROOT}; remove gpio.sysfsRoot for --hardware pi`,
      { sysfsRoot: gpio.sysfsRoot },
    );
  }
  const openLine = options.openLine ?? openOnoffLine;
  const pins = resolvePins(gpio);
  const relay = openRelay(pins.get('relay')!, openLine);
  const opened: Array<{ release(): void }> = [relay];
  const inputs: Partial<Record<InputRole, DigitalInput>> = {};
  let heartbeat: PulseOutput | undefined;
  try {
    const pulsePin = pins.get('heartbeat');
    if (pulsePin) {
      heartbeat = createGpioPulseOutput(openLine(pulsePin.sysfs, pulseIdleDirection(pulsePin.activeLow), 'none'), pulsePin.activeLow);
      opened.push(heartbeat);
    }
    for (const role of INPUTS) {
      const pin = pins.get(role);
      if (!pin) continue;
      inputs[role] = openInput(pin, gpio, log, { ...options, openLine });
      opened.push(inputs[role]!);
    }
  } catch (error) {
    log.err('gpio_open_failed', { code: error instanceof DriverError ? error.code : undefined, error });
    try {
      releaseAll(opened, log);
    } catch {
      // Already logged; the failure to open is the one to report.
    }
    throw error;
  }
  log.info('gpio_opened', { ...pinNumbers(pins), debounceMs: gpio.debounceMs });
  let released = false;
  return {
    relay,
    relayFeedback: inputs.relayFeedback,
    plugPresent: inputs.plugPresent!,
    emergencyStop: inputs.emergencyStop!,
    externalFault: inputs.externalFault,
    heartbeat,
    release() {
      if (released) return;
      released = true;
      releaseAll(opened, log);
      log.info('gpio_released');
    },
  };
}
