// The dead-man output on one GPIO line: the agent toggles it while the relay is meant to be closed,
// and a charge pump or retriggerable monostable in series with the contactor coil keeps the coil
// enabled only while edges keep coming. Idle (held) is the inactive level; with activeLow that is high.
import type { PulseOutput } from '../types.js';
import type { GpioLine, Level, LineDirection } from './line.js';

function idleLevel(activeLow: boolean): Level {
  return activeLow ? 1 : 0;
}

/** The output direction whose first level is the idle one, so opening the line makes no edge. */
export function pulseIdleDirection(activeLow: boolean): LineDirection {
  return idleLevel(activeLow) === 1 ? 'high' : 'low';
}

/** A PulseOutput on an opened output line that starts at its idle level. */
export function createGpioPulseOutput(line: GpioLine, activeLow: boolean): PulseOutput {
  const idle = idleLevel(activeLow);
  let level: Level = idle;
  let released = false;
  const hold = () => {
    if (released || level === idle) return;
    level = idle;
    line.write(level);
  };
  return {
    toggle() {
      if (released) return;
      level = level === 1 ? 0 : 1;
      line.write(level);
    },
    hold,
    release() {
      if (released) return;
      try {
        hold();
      } finally {
        released = true;
        line.release();
      }
    },
  };
}
