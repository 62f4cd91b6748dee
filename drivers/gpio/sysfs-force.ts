// Drives one sysfs GPIO line to a level with plain file writes (node:fs only, no onoff, no native
// binding): what `charger-agent relay-safe` does after the agent died. A sysfs line keeps the value
// the dead process left, so the line is written again: exported if nothing holds it, active_low
// reset (levels here are physical), direction set to the output level in one write ("high"/"low"
// is glitch-free in the kernel), then value, then read back.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DriverError } from '../types.js';
import { gpioErrorFromFs } from './errors.js';
import type { Level } from './line.js';

export interface SysfsForceOptions {
  /** How long to wait for gpioN/ to appear and become writable after an export (udev sets its group). */
  exportWaitMs?: number;
}

export interface SysfsForceResult {
  sysfs: number;
  level: Level;
  /** We exported the line (nothing held it: the kernel had already released it). */
  exported: boolean;
  /** The direction the line had before: "out" after a killed agent. */
  directionBefore: string | undefined;
  /** The value file read back the level. */
  verified: boolean;
}

const POLL_MS = 10;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Writes a sysfs attribute, retrying EACCES/ENOENT until the deadline (a fresh export is not writable yet). */
function writeAttribute(path: string, text: string, deadlineMs: number): void {
  for (;;) {
    try {
      writeFileSync(path, text);
      return;
    } catch (error) {
      const errno = (error as NodeJS.ErrnoException).code;
      if ((errno !== 'EACCES' && errno !== 'ENOENT') || performance.now() >= deadlineMs) throw error;
      sleepSync(POLL_MS);
    }
  }
}

function exportLine(root: string, sysfs: number, deadlineMs: number): void {
  const exportPath = join(root, 'export');
  try {
    writeFileSync(exportPath, String(sysfs));
  } catch (error) {
    // EBUSY: exported meanwhile, or held through the character device by someone else
    if ((error as NodeJS.ErrnoException).code !== 'EBUSY') throw gpioErrorFromFs(error, `cannot export GPIO ${sysfs}`, exportPath, { sysfs });
  }
  while (!existsSync(join(root, `gpio${sysfs}`, 'value'))) {
    if (performance.now() >= deadlineMs) {
      throw new DriverError('GPIO_EXPORT_TIMEOUT', `GPIO ${sysfs} was exported through ${exportPath} but ${root}/gpio${sysfs}/value did not appear; check dmesg for the kernel's reason`, { sysfs });
    }
    sleepSync(POLL_MS);
  }
}

/** Drives sysfs GPIO `sysfs` under `root` to the physical `level`; throws a DriverError when it cannot. */
export function forceSysfsLevel(root: string, sysfs: number, level: Level, options: SysfsForceOptions = {}): SysfsForceResult {
  const deadlineMs = performance.now() + (options.exportWaitMs ?? 2000);
  const dir = join(root, `gpio${sysfs}`);
  const exported = !existsSync(join(dir, 'value'));
  if (exported) exportLine(root, sysfs, deadlineMs);
  const directionBefore = readTrimmed(join(dir, 'direction'));
  const write = (attribute: string, text: string) => {
    try {
      writeAttribute(join(dir, attribute), text, deadlineMs);
    } catch (error) {
      throw gpioErrorFromFs(error, `cannot set ${attribute} of GPIO ${sysfs}`, join(dir, attribute), { sysfs });
    }
  };
  if (existsSync(join(dir, 'active_low'))) write('active_low', '0');
  write('direction', level === 1 ? 'high' : 'low');
  write('value', String(level));
  return { sysfs, level, exported, directionBefore, verified: readTrimmed(join(dir, 'value')) === String(level) };
}
