// Since kernel 6.6 sysfs numbers a GPIO as its chip's base plus the line offset, and the base is
// whatever the kernel picked (512 for pinctrl-bcm2711 on a Pi 4, 571 for pinctrl-rp1 on a Pi 5).
// So the base is read from <sysfsRoot>/gpiochip*/{label,base,ngpio}, never assumed.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DriverError } from '../types.js';
import { gpioErrorFromFs, gpioUnavailable } from './errors.js';
import type { PinSettings } from './settings.js';

export interface GpioChip {
  label: string;
  /** sysfs number of line 0. */
  base: number;
  /** Number of lines: valid offsets are 0 .. ngpio - 1. */
  ngpio: number;
}

/** Every gpiochip under the sysfs root, by ascending base. */
export function listGpioChips(sysfsRoot: string): GpioChip[] {
  let names: string[];
  try {
    names = readdirSync(sysfsRoot);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw gpioUnavailable(sysfsRoot);
    throw gpioErrorFromFs(error, 'cannot list GPIO chips', sysfsRoot);
  }
  return names
    .filter((name) => /^gpiochip\d+$/.test(name))
    .map((name) => readChip(join(sysfsRoot, name)))
    .sort((a, b) => a.base - b.base);
}

function readChip(dir: string): GpioChip {
  const read = (file: string) => {
    try {
      return readFileSync(join(dir, file), 'utf8').trim();
    } catch (error) {
      throw gpioErrorFromFs(error, 'cannot read a GPIO chip', join(dir, file));
    }
  };
  const chip = { label: read('label'), base: Number(read('base')), ngpio: Number(read('ngpio')) };
  if (!Number.isInteger(chip.base) || !Number.isInteger(chip.ngpio)) {
    throw new DriverError('GPIO_IO', `cannot read a GPIO chip: ${dir}/base and ngpio must be integers`, { path: dir });
  }
  return chip;
}

function describeChips(chips: GpioChip[]): string {
  return chips.map((chip) => `${chip.label} (base ${chip.base}, ${chip.ngpio} lines)`).join(', ');
}

/** The one chip with this label; GPIO_CHIP_NOT_FOUND lists the labels that do exist. */
export function findGpioChip(label: string, sysfsRoot: string, configPath = 'chip'): GpioChip {
  const chips = listGpioChips(sysfsRoot);
  const matches = chips.filter((chip) => chip.label === label);
  if (matches.length === 1) return matches[0]!;
  const labels = chips.map((chip) => chip.label);
  if (matches.length === 0) {
    const present = chips.length ? `chips present: ${describeChips(chips)}` : 'no gpiochip entries at all';
    throw new DriverError(
      'GPIO_CHIP_NOT_FOUND',
      `${configPath}: no gpiochip labelled "${label}" under ${sysfsRoot}; ${present}. Set ${configPath} to one of those labels (pinctrl-rp1 on a Pi 5, pinctrl-bcm2711 on a Pi 4)`,
      { label, labels, sysfsRoot },
    );
  }
  throw new DriverError(
    'GPIO_CHIP_AMBIGUOUS',
    `${configPath}: ${matches.length} gpiochips are labelled "${label}" under ${sysfsRoot} (${describeChips(matches)}); give the pin as a raw sysfs number instead`,
    { label, bases: matches.map((chip) => chip.base), sysfsRoot },
  );
}

/** The sysfs GPIO number of a configured pin: the raw number, or the chip's base plus the line. */
export function resolveSysfsNumber(pin: PinSettings, sysfsRoot: string, configPath = 'pin'): number {
  if (pin.sysfs !== undefined) return pin.sysfs;
  if (pin.chip === undefined || pin.line === undefined) {
    throw new DriverError('GPIO_CONFIG', `${configPath} needs either chip and line, or sysfs`, { configPath });
  }
  const chip = findGpioChip(pin.chip, sysfsRoot, `${configPath}.chip`);
  if (pin.line >= chip.ngpio) {
    throw new DriverError(
      'GPIO_LINE_OUT_OF_RANGE',
      `${configPath}.line is ${pin.line} but ${chip.label} has lines 0 to ${chip.ngpio - 1}; set ${configPath}.line to the line offset on that chip (the BCM number on a Pi)`,
      { configPath, line: pin.line, label: chip.label, ngpio: chip.ngpio },
    );
  }
  return chip.base + pin.line;
}
