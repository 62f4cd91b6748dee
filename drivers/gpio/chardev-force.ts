// Drives one GPIO line to a level through the character device, with libgpiod's own tools
// (Debian package gpiod: gpiodetect finds the chip by label, gpioset sets the line and exits), so
// nothing is compiled or loaded from node_modules. gpioset v1 (bookworm) and v2 (trixie) take
// different arguments. Caveat from gpioset(1): once the requesting process exits the kernel does not
// guarantee the level; on a Raspberry Pi the pin controller keeps it, a gpio-sim line falls back to
// its pull. A line held through sysfs is busy here: sysfs is the path that drove it then.
import { execFileSync } from 'node:child_process';
import { DriverError } from '../types.js';
import type { Level } from './line.js';

export interface ChardevForceOptions {
  /** Directory list for finding gpiodetect and gpioset; default PATH. */
  path?: string;
  timeoutMs?: number;
}

export type ChardevForceResult =
  | { outcome: 'driven'; chip: string; offset: number; level: Level; tool: string }
  /** The line is requested by someone else (sysfs export, another program). */
  | { outcome: 'busy'; chip: string; offset: number; detail: string }
  /** No gpiod tools, or no chip with that label: nothing to drive through. */
  | { outcome: 'unavailable'; detail: string };

interface Tool {
  run(args: string[]): string;
}

function tool(name: string, options: ChardevForceOptions): Tool {
  const env = { PATH: options.path ?? process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
  return {
    run: (args) => execFileSync(name, args, { env, timeout: options.timeoutMs ?? 3000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  };
}

function failureText(error: unknown): string {
  const failed = error as { stderr?: string; message?: string };
  return (failed.stderr || failed.message || String(error)).trim().split('\n').pop() ?? '';
}

/** gpiodetect's lines: `gpiochip0 [pinctrl-bcm2711] (58 lines)`. */
export function chipByLabel(gpiodetectOutput: string, label: string): string | undefined {
  for (const line of gpiodetectOutput.split('\n')) {
    const match = /^(\S+) \[(.*)\] \(\d+ lines\)/.exec(line.trim());
    if (match && match[2] === label) return match[1];
  }
  return undefined;
}

/** gpioset's arguments to set one line and exit, for its major version. */
export function gpiosetArgs(versionOutput: string, chip: string, offset: number, level: Level): string[] {
  return /\bv?2\.\d/.test(versionOutput) ? ['-c', chip, '-t', '0', `${offset}=${level}`] : ['--mode=exit', chip, `${offset}=${level}`];
}

export function forceChardevLevel(label: string, offset: number, level: Level, options: ChardevForceOptions = {}): ChardevForceResult {
  let listing: string;
  try {
    listing = tool('gpiodetect', options).run([]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { outcome: 'unavailable', detail: 'gpiodetect not found (apt install gpiod)' };
    return { outcome: 'unavailable', detail: `gpiodetect failed: ${failureText(error)}` };
  }
  const chip = chipByLabel(listing, label);
  if (!chip) return { outcome: 'unavailable', detail: `no GPIO character device labelled ${label}` };
  const gpioset = tool('gpioset', options);
  let version: string;
  try {
    version = gpioset.run(['--version']);
  } catch (error) {
    return { outcome: 'unavailable', detail: `gpioset not usable: ${failureText(error)}` };
  }
  try {
    gpioset.run(gpiosetArgs(version, chip, offset, level));
  } catch (error) {
    const detail = failureText(error);
    if (/busy/i.test(detail)) return { outcome: 'busy', chip, offset, detail };
    throw new DriverError('GPIO_CHARDEV', `gpioset could not set ${chip} line ${offset} to ${level}: ${detail}`, { chip, offset });
  }
  return { outcome: 'driven', chip, offset, level, tool: version.split('\n')[0]!.trim() };
}
