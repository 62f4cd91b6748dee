// GPIO failures as DriverError values whose message says what to do about them. An operator reads
// these once, on a device that will not start, so each one names the path and the fix.
import { DriverError } from '../types.js';

export const GPIO_PERMISSION_FIX =
  'add the service user to the gpio group (SupplementaryGroups=gpio) or a udev rule giving group gpio rw on /sys/class/gpio and /dev/gpiochip*';
export const GPIO_UNAVAILABLE_FIX =
  'use a kernel with sysfs GPIO (CONFIG_GPIO_SYSFS=y), or run with --hardware sim';

type Explain = (doing: string, path: string) => { code: string; message: string };

const BY_ERRNO: Record<string, Explain> = {
  EACCES: (doing, path) => ({ code: 'GPIO_PERMISSION', message: `${doing}: permission denied on ${path}; ${GPIO_PERMISSION_FIX}` }),
  EPERM: (doing, path) => ({ code: 'GPIO_PERMISSION', message: `${doing}: operation not permitted on ${path}; ${GPIO_PERMISSION_FIX}` }),
  ENOENT: (doing, path) => ({ code: 'GPIO_UNAVAILABLE', message: `${doing}: ${path} does not exist; ${GPIO_UNAVAILABLE_FIX}` }),
  ENOTDIR: (doing, path) => ({ code: 'GPIO_UNAVAILABLE', message: `${doing}: ${path} is not a directory; ${GPIO_UNAVAILABLE_FIX}` }),
  EINVAL: (doing, path) => ({
    code: 'GPIO_UNAVAILABLE',
    message: `${doing}: ${path} rejected it (EINVAL), so this kernel has no such GPIO; check the chip's base and ngpio under /sys/class/gpio/gpiochip*/`,
  }),
  EBUSY: (doing, path) => ({
    code: 'GPIO_BUSY',
    message: `${doing}: ${path} says the line is in use by another process or a kernel driver (see gpioinfo or /sys/kernel/debug/gpio)`,
  }),
};

/** The GPIO_UNAVAILABLE error for a sysfs GPIO root that is not there. */
export function gpioUnavailable(sysfsRoot: string): DriverError {
  return new DriverError('GPIO_UNAVAILABLE', `${sysfsRoot} does not exist; ${GPIO_UNAVAILABLE_FIX}`, { path: sysfsRoot });
}

/** Turns a failed file-system call on sysfs GPIO into a DriverError; DriverErrors pass through. */
export function gpioErrorFromFs(error: unknown, doing: string, fallbackPath: string, fields: Record<string, unknown> = {}): DriverError {
  if (error instanceof DriverError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  const path = (error as NodeJS.ErrnoException | undefined)?.path ?? fallbackPath;
  const explain = BY_ERRNO[errno];
  const { code, message } = explain
    ? explain(doing, path)
    : { code: 'GPIO_IO', message: `${doing}: ${path}: ${error instanceof Error ? error.message : String(error)}` };
  return new DriverError(code, message, { ...fields, path, errno });
}
