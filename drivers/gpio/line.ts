// The transport under the relay and the inputs: one sysfs GPIO line at physical levels (no
// active-low here: the relay and input logic apply it, so their tests run on an in-memory line).
// This is the only file that touches onoff. onoff always uses /sys/class/gpio, whatever
// gpio.sysfsRoot says, and loads its native epoll binding when required, so it is required lazily:
// --hardware sim and the unit tests never load it.
import { createRequire } from 'node:module';
import type { Gpio as OnoffGpio } from 'onoff';
import { DriverError } from '../types.js';
import { gpioErrorFromFs } from './errors.js';

export type Level = 0 | 1;
/** 'in', or an output whose first physical level is high / low (set before the line drives anything). */
export type LineDirection = 'in' | 'high' | 'low';
export type LineEdge = 'none' | 'both';

export interface GpioLine {
  /** Physical level now. */
  read(): Level;
  write(level: Level): void;
  /** onLevel gets the physical level after each edge; onError gets failures of edge detection. */
  watch(onLevel: (level: Level) => void, onError?: (error: DriverError) => void): void;
  unwatch(onLevel: (level: Level) => void): void;
  /** Stops watching and unexports the line. */
  release(): void;
}

export type LineOpener = (sysfsNumber: number, direction: LineDirection, edge: LineEdge) => GpioLine;

/** Where onoff reads and writes, hard-coded in onoff itself. */
export const ONOFF_SYSFS_ROOT = '/sys/class/gpio';

type OnoffModule = typeof import('onoff');
let onoff: OnoffModule | undefined;

function loadOnoff(): OnoffModule {
  try {
    onoff ??= createRequire(import.meta.url)('onoff') as OnoffModule;
    return onoff;
  } catch (error) {
    throw new DriverError(
      'GPIO_UNAVAILABLE',
      `cannot load onoff and its native epoll binding (${error instanceof Error ? error.message : String(error)}); reinstall the package on the device with build tools, or run with --hardware sim`,
    );
  }
}

/** Exports the line through onoff and configures it. Note that onoff's own `Gpio.accessible`
 *  only answers true/false; the reason (missing sysfs, permissions) comes from the error here. */
export const openOnoffLine: LineOpener = (sysfsNumber, direction, edge) => {
  const { Gpio } = loadOnoff();
  try {
    // activeLow false resets a sysfs active_low left set by another tool: levels here are physical.
    return onoffLine(new Gpio(sysfsNumber, direction, edge, { activeLow: false, reconfigureDirection: true }), sysfsNumber);
  } catch (error) {
    throw gpioErrorFromFs(error, `cannot open GPIO ${sysfsNumber}`, `${ONOFF_SYSFS_ROOT}/export`, { sysfs: sysfsNumber });
  }
};

/** Adapts an opened onoff Gpio to GpioLine, turning its errors into DriverErrors. */
export function onoffLine(gpio: Pick<OnoffGpio, 'readSync' | 'writeSync' | 'watch' | 'unwatch' | 'unwatchAll' | 'unexport'>, sysfsNumber: number): GpioLine {
  const valuePath = `${ONOFF_SYSFS_ROOT}/gpio${sysfsNumber}/value`;
  const fail = (doing: string, error: unknown) => gpioErrorFromFs(error, `cannot ${doing} GPIO ${sysfsNumber}`, valuePath, { sysfs: sysfsNumber });
  const watchers = new Map<(level: Level) => void, Parameters<OnoffGpio['watch']>[0]>();
  let released = false;
  return {
    read() {
      try {
        return gpio.readSync();
      } catch (error) {
        throw fail('read', error);
      }
    },
    write(level) {
      try {
        gpio.writeSync(level);
      } catch (error) {
        throw fail('write', error);
      }
    },
    watch(onLevel, onError) {
      const callback: Parameters<OnoffGpio['watch']>[0] = (error, level) => {
        if (error) onError?.(fail('watch', error));
        else onLevel(level);
      };
      watchers.set(onLevel, callback);
      gpio.watch(callback);
    },
    unwatch(onLevel) {
      const callback = watchers.get(onLevel);
      if (!callback) return;
      watchers.delete(onLevel);
      gpio.unwatch(callback);
    },
    release() {
      if (released) return;
      released = true;
      watchers.clear();
      try {
        gpio.unwatchAll();
        gpio.unexport();
      } catch (error) {
        throw fail('release', error);
      }
    },
  };
}
