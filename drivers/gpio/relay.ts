// The contactor coil on one GPIO output. Open is the safe state: it is the level the line starts at,
// the level release() leaves behind before letting go, and open() works even after a release.
import type { Relay } from '../types.js';
import { DriverError } from '../types.js';
import type { GpioLine, Level, LineDirection } from './line.js';

function levelFor(closed: boolean, activeLow: boolean): Level {
  return closed !== activeLow ? 1 : 0;
}

/** The output direction whose first level holds the relay open, so opening the line never closes it. */
export function relayOpenDirection(activeLow: boolean): LineDirection {
  return levelFor(false, activeLow) === 1 ? 'high' : 'low';
}

/** A Relay on an opened output line; `name` (e.g. gpio.relay) appears in errors. */
export function createGpioRelay(line: GpioLine, activeLow: boolean, name = 'relay'): Relay {
  let released = false;
  return {
    close() {
      if (released) throw new DriverError('GPIO_RELEASED', `${name} was released; it cannot be closed again`, { name });
      line.write(levelFor(true, activeLow));
    },
    open() {
      if (!released) line.write(levelFor(false, activeLow));
    },
    release() {
      if (released) return;
      released = true;
      try {
        line.write(levelFor(false, activeLow));
      } finally {
        line.release();
      }
    },
  };
}
