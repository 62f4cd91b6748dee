// Test aid only: a /sys/class/gpio look-alike in a temporary directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
