// Test aid only: a /sys/class/gpio look-alike in a temporary directory, and a line transport that
// reads and writes it as plain files (what the kernel would do on export, direction and value), so a
// test can run the agent's --hardware pi drivers on it and watch the value files from outside.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GpioLine, Level, LineOpener } from '../line.js';

export interface FakeChip {
  label: string;
  base: number;
  ngpio: number;
}

export const PI4_CHIPS: FakeChip[] = [
  { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
  { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
];

export const PI5_CHIPS: FakeChip[] = [
  { label: 'gpio-brcmstb@107d508500', base: 512, ngpio: 32 },
  { label: 'gpio-brcmstb@107d508520', base: 544, ngpio: 4 },
  { label: 'gpio-brcmstb@107d517c00', base: 548, ngpio: 17 },
  { label: 'gpio-brcmstb@107d517c20', base: 565, ngpio: 6 },
  { label: 'pinctrl-rp1', base: 571, ngpio: 54 },
];

/** A sysfs GPIO root with export/unexport and one gpiochipN directory per chip (values end in \n). */
export function makeSysfsRoot(chips: FakeChip[]): { root: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'charger-gpio-'));
  const root = join(dir, 'gpio');
  mkdirSync(root);
  writeFileSync(join(root, 'export'), '');
  writeFileSync(join(root, 'unexport'), '');
  for (const chip of chips) {
    const chipDir = join(root, `gpiochip${chip.base}`);
    mkdirSync(chipDir);
    writeFileSync(join(chipDir, 'label'), `${chip.label}\n`);
    writeFileSync(join(chipDir, 'base'), `${chip.base}\n`);
    writeFileSync(join(chipDir, 'ngpio'), `${chip.ngpio}\n`);
  }
  return { root, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function readLevel(valuePath: string): Level | undefined {
  // a writer truncates before it writes: an empty read is "not yet", not a 0
  const text = readFileSync(valuePath, 'utf8').trim();
  return text === '1' ? 1 : text === '0' ? 0 : undefined;
}

/**
 * A LineOpener on a fake sysfs root: opening a line exports it (gpioN/ with direction, edge,
 * active_low, value), writes go to gpioN/value, and inputs are watched by polling their value file
 * every pollMs (a regular file has no POLLPRI edge). Release unexports (removes gpioN/).
 */
export function fileLineOpener(root: string, pollMs = 2): LineOpener {
  return (sysfsNumber, direction, edge) => {
    const dir = join(root, `gpio${sysfsNumber}`);
    const valuePath = join(dir, 'value');
    writeFileSync(join(root, 'export'), String(sysfsNumber));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'direction'), direction === 'in' ? 'in\n' : 'out\n');
    writeFileSync(join(dir, 'edge'), `${edge}\n`);
    writeFileSync(join(dir, 'active_low'), '0\n');
    if (direction !== 'in') writeFileSync(valuePath, direction === 'high' ? '1\n' : '0\n');
    else if (!existsSync(valuePath)) writeFileSync(valuePath, '0\n');
    const watchers = new Map<(level: Level) => void, NodeJS.Timeout>();
    const line: GpioLine = {
      read: () => readLevel(valuePath) ?? 0,
      write: (level) => writeFileSync(valuePath, `${level}\n`),
      watch(onLevel) {
        let last = readLevel(valuePath);
        const timer = setInterval(() => {
          const level = readLevel(valuePath);
          if (level === undefined || level === last) return;
          last = level;
          onLevel(level);
        }, pollMs);
        timer.unref();
        watchers.set(onLevel, timer);
      },
      unwatch(onLevel) {
        clearInterval(watchers.get(onLevel));
        watchers.delete(onLevel);
      },
      release() {
        for (const timer of watchers.values()) clearInterval(timer);
        watchers.clear();
        rmSync(dir, { recursive: true, force: true });
        writeFileSync(join(root, 'unexport'), String(sysfsNumber));
      },
    };
    return line;
  };
}
