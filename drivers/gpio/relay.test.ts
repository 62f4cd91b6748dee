import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DriverError } from '../types.js';
import { FakeGpio } from './testing/fake-line.js';
import { createGpioRelay, relayOpenDirection } from './relay.js';

function relayOn(activeLow: boolean) {
  const gpio = new FakeGpio();
  const line = gpio.open(529, relayOpenDirection(activeLow), 'none');
  return { gpio, line: gpio.line(529), relay: createGpioRelay(line, activeLow, 'gpio.relay') };
}

describe('GPIO relay', () => {
  it('active-high: the line starts low (open), close drives it high, open drives it low', () => {
    const { gpio, line, relay } = relayOn(false);
    assert.equal(line.direction, 'low');
    relay.close();
    assert.equal(line.level, 1);
    relay.open();
    assert.equal(line.level, 0);
    assert.deepEqual(gpio.journal, ['open 529 low none', 'write 529 1', 'write 529 0']);
  });

  it('active-low: the line starts high (open), close drives it low, open drives it high', () => {
    const { line, relay } = relayOn(true);
    assert.equal(line.direction, 'high');
    assert.equal(line.level, 1);
    relay.close();
    assert.equal(line.level, 0);
    relay.open();
    assert.equal(line.level, 1);
  });

  for (const activeLow of [false, true]) {
    it(`release drives a closed relay open before releasing the line (activeLow ${activeLow})`, () => {
      const { gpio, relay } = relayOn(activeLow);
      const open = activeLow ? 1 : 0;
      relay.close();
      relay.release();
      assert.deepEqual(gpio.journal.slice(-2), [`write 529 ${open}`, 'release 529']);
    });
  }

  it('release twice releases the line once and does not throw', () => {
    const { gpio, line, relay } = relayOn(false);
    relay.release();
    relay.release();
    assert.ok(line.released);
    assert.equal(gpio.journal.filter((entry) => entry === 'release 529').length, 1);
  });

  it('after release, close is refused with GPIO_RELEASED and open is a harmless no-op', () => {
    const { gpio, relay } = relayOn(false);
    relay.release();
    const before = [...gpio.journal];
    assert.throws(() => relay.close(), (error) => error instanceof DriverError && error.code === 'GPIO_RELEASED');
    relay.open();
    assert.deepEqual(gpio.journal, before);
  });

  it('a failed open-write during release still releases the line and reports the failure', () => {
    const { line, relay } = relayOn(false);
    line.write = () => {
      throw new DriverError('GPIO_IO', 'write failed');
    };
    assert.throws(() => relay.release(), /GPIO_IO/);
    assert.ok(line.released);
  });
});
