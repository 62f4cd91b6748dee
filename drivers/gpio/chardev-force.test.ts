import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chipByLabel, gpiosetArgs } from './chardev-force.js';

describe('forcing a line through the character device', () => {
  it('finds the chip by label in gpiodetect\'s listing', () => {
    const listing = 'gpiochip0 [pinctrl-bcm2711] (58 lines)\ngpiochip1 [raspberrypi-exp-gpio] (8 lines)\n';
    assert.equal(chipByLabel(listing, 'raspberrypi-exp-gpio'), 'gpiochip1');
    assert.equal(chipByLabel(listing, 'pinctrl-rp1'), undefined);
  });

  it('speaks gpioset v1 (bookworm) and v2 (trixie), setting the line and exiting', () => {
    assert.deepEqual(gpiosetArgs('gpioset (libgpiod) v1.6.3\nCopyright', 'gpiochip0', 17, 0), ['--mode=exit', 'gpiochip0', '17=0']);
    assert.deepEqual(gpiosetArgs('gpioset (libgpiod) v2.2.1', 'gpiochip4', 17, 1), ['-c', 'gpiochip4', '-t', '0', '17=1']);
  });
});
