// A debounced digital input on one GPIO line watched on both edges. A change counts only once the
// level has held for debounceMs; the timers are injected so tests step time instead of sleeping.
import type { DigitalInput } from '../types.js';
import { DriverError } from '../types.js';
import type { GpioLine, Level } from './line.js';

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface GpioInputOptions {
  activeLow: boolean;
  debounceMs: number;
  /** Appears in errors, e.g. gpio.emergencyStop. */
  name?: string;
  timers?: Timers;
  /** Failures of edge detection, which no read() would report. */
  onError?: (error: DriverError) => void;
  /**
   * Report the first edge towards active at once and debounce only the way back (the e-stop: a
   * press must open the relay now; a bounce can only make it look pressed a little longer).
   */
  activeAtFirstEdge?: boolean;
}

/** A DigitalInput on an opened input line (edge 'both'). read() gives the debounced value. */
export function createGpioInput(line: GpioLine, options: GpioInputOptions): DigitalInput {
  const { activeLow, debounceMs, name = 'input', timers = realTimers } = options;
  const listeners = new Set<(active: boolean) => void>();
  let stableLevel = line.read();
  let pending: { handle: unknown } | undefined;
  let released = false;

  const isActive = (level: Level) => (level === 1) !== activeLow;

  const cancelPending = () => {
    if (pending) timers.clearTimeout(pending.handle);
    pending = undefined;
  };

  // Confirms with a fresh read, so a missed edge cannot leave a stale level behind.
  const settle = () => {
    pending = undefined;
    const level = line.read();
    if (level !== stableLevel) report(level);
  };

  const schedule = () => {
    if (debounceMs === 0) settle();
    else pending = { handle: timers.setTimeout(settle, debounceMs) };
  };

  const report = (level: Level) => {
    stableLevel = level;
    for (const listener of [...listeners]) listener(isActive(level));
  };
  // Every edge restarts the wait; a bounce back to the stable level cancels it.
  const onLevel = (level: Level) => {
    if (released) return;
    cancelPending();
    if (level === stableLevel) return;
    if (options.activeAtFirstEdge && isActive(level)) report(level);
    else schedule();
  };

  line.watch(onLevel, options.onError);

  return {
    read() {
      if (released) throw new DriverError('GPIO_RELEASED', `${name} was released; it cannot be read`, { name });
      // A poll that sees a level no edge reported starts the same debounce as an edge would.
      if (!pending && line.read() !== stableLevel) schedule();
      return isActive(stableLevel);
    },
    readNow() {
      const level = line.read();
      if (!released && !pending && level !== stableLevel) schedule();
      return isActive(level);
    },
    watch(onChange) {
      listeners.add(onChange);
      return () => {
        listeners.delete(onChange);
      };
    },
    release() {
      if (released) return;
      released = true;
      cancelPending();
      listeners.clear();
      line.unwatch(onLevel);
      line.release();
    },
  };
}
