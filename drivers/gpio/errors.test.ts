import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DriverError } from '../types.js';
import { gpioErrorFromFs } from './errors.js';

function fsError(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed, open '${path}'`), { code, path });
}

describe('GPIO errors from file-system failures', () => {
  it('EACCES and EPERM are GPIO_PERMISSION with the gpio group and udev fix', () => {
    for (const errno of ['EACCES', 'EPERM']) {
      const error = gpioErrorFromFs(fsError(errno, '/sys/class/gpio/export'), 'cannot open GPIO 529', '/x');
      assert.equal(error.code, 'GPIO_PERMISSION');
      assert.match(error.message, /\/sys\/class\/gpio\/export/);
      assert.match(error.message, /SupplementaryGroups=gpio/);
      assert.match(error.message, /udev rule giving group gpio rw on \/sys\/class\/gpio and \/dev\/gpiochip\*/);
      assert.equal(error.fields.errno, errno);
    }
  });

  it('ENOENT and EINVAL are GPIO_UNAVAILABLE naming the path', () => {
    const missing = gpioErrorFromFs(fsError('ENOENT', '/sys/class/gpio/export'), 'cannot open GPIO 529', '/x');
    assert.equal(missing.code, 'GPIO_UNAVAILABLE');
    assert.match(missing.message, /\/sys\/class\/gpio\/export does not exist.*CONFIG_GPIO_SYSFS.*--hardware sim/);
    const invalid = gpioErrorFromFs(fsError('EINVAL', '/sys/class/gpio/export'), 'cannot open GPIO 9999', '/x');
    assert.equal(invalid.code, 'GPIO_UNAVAILABLE');
    assert.match(invalid.message, /cannot open GPIO 9999: \/sys\/class\/gpio\/export rejected it \(EINVAL\)/);
  });

  it('uses the fallback path when the error names none, and keeps unknown errors as GPIO_IO', () => {
    const error = gpioErrorFromFs(new Error('boom'), 'cannot write GPIO 529', '/sys/class/gpio/gpio529/value');
    assert.equal(error.code, 'GPIO_IO');
    assert.equal(error.fields.path, '/sys/class/gpio/gpio529/value');
    assert.match(error.message, /boom/);
  });

  it('passes a DriverError through unchanged', () => {
    const original = new DriverError('GPIO_BUSY', 'taken');
    assert.equal(gpioErrorFromFs(original, 'x', '/x'), original);
  });
});
