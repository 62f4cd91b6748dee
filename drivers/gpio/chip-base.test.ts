import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DriverError } from '../types.js';
import { findGpioChip, listGpioChips, resolveSysfsNumber } from './chip-base.js';
import { makeSysfsRoot, PI4_CHIPS, PI5_CHIPS } from './testing/fake-sysfs.js';

function driverError(fn: () => unknown): DriverError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DriverError, `expected a DriverError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a DriverError');
}

const pin = (chip: string, line: number) => ({ chip, line, activeLow: false });

describe('chip base lookup', () => {
  const pi4 = makeSysfsRoot(PI4_CHIPS);
  const pi5 = makeSysfsRoot(PI5_CHIPS);
  const legacy = makeSysfsRoot([{ label: 'pinctrl-bcm2835', base: 0, ngpio: 54 }]);
  const empty = makeSysfsRoot([]);
  after(() => [pi4, pi5, legacy, empty].forEach((tree) => tree.cleanup()));

  it('on a Pi 4 with kernel 6.6, BCM 17 on pinctrl-bcm2711 is sysfs 529', () => {
    assert.equal(resolveSysfsNumber(pin('pinctrl-bcm2711', 17), pi4.root), 529);
  });

  it('finds a second chip on the same tree from its own base', () => {
    assert.equal(resolveSysfsNumber(pin('raspberrypi-exp-gpio', 2), pi4.root), 572);
  });

  it('on a Pi 5, BCM 17 on pinctrl-rp1 is sysfs 588, not 512 + 17', () => {
    assert.equal(resolveSysfsNumber(pin('pinctrl-rp1', 17), pi5.root), 588);
  });

  it('on a kernel before 6.6 (base 0) the sysfs number is the BCM number', () => {
    assert.equal(resolveSysfsNumber(pin('pinctrl-bcm2835', 17), legacy.root), 17);
  });

  it('lists only the gpiochip entries, by base, ignoring export and exported lines', () => {
    mkdirSync(join(pi4.root, 'gpio529'));
    assert.deepEqual(listGpioChips(pi4.root), PI4_CHIPS);
  });

  it('a label that is not there is GPIO_CHIP_NOT_FOUND listing the labels that are', () => {
    const error = driverError(() => resolveSysfsNumber(pin('pinctrl-rp1', 17), pi4.root, 'gpio.relay'));
    assert.equal(error.code, 'GPIO_CHIP_NOT_FOUND');
    assert.deepEqual(error.fields.labels, ['pinctrl-bcm2711', 'raspberrypi-exp-gpio']);
    assert.match(error.message, /gpio\.relay\.chip: no gpiochip labelled "pinctrl-rp1"/);
    assert.match(error.message, /pinctrl-bcm2711 \(base 512, 58 lines\), raspberrypi-exp-gpio \(base 570, 8 lines\)/);
  });

  it('a root with no chips at all says so', () => {
    const error = driverError(() => findGpioChip('pinctrl-rp1', empty.root));
    assert.equal(error.code, 'GPIO_CHIP_NOT_FOUND');
    assert.match(error.message, /no gpiochip entries at all/);
  });

  it('a missing sysfs root is GPIO_UNAVAILABLE naming the path and both fixes', () => {
    const missing = join(empty.root, 'nope');
    const error = driverError(() => resolveSysfsNumber(pin('pinctrl-rp1', 17), missing));
    assert.equal(error.code, 'GPIO_UNAVAILABLE');
    assert.ok(error.message.includes(missing));
    assert.match(error.message, /CONFIG_GPIO_SYSFS/);
    assert.match(error.message, /--hardware sim/);
  });

  it('a line at or past ngpio is GPIO_LINE_OUT_OF_RANGE; the last line is fine', () => {
    assert.equal(resolveSysfsNumber(pin('pinctrl-bcm2711', 57), pi4.root), 569);
    const error = driverError(() => resolveSysfsNumber(pin('pinctrl-bcm2711', 58), pi4.root, 'gpio.plugPresent'));
    assert.equal(error.code, 'GPIO_LINE_OUT_OF_RANGE');
    assert.match(error.message, /gpio\.plugPresent\.line is 58 but pinctrl-bcm2711 has lines 0 to 57/);
  });

  it('a raw sysfs number is used as given, without reading sysfs', () => {
    assert.equal(resolveSysfsNumber({ sysfs: 529, activeLow: false }, join(empty.root, 'nope')), 529);
  });

  it('a raw sysfs number wins over chip and line', () => {
    assert.equal(resolveSysfsNumber({ sysfs: 600, chip: 'pinctrl-rp1', line: 17, activeLow: false }, pi5.root), 600);
  });
});
