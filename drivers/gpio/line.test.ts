import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DriverError } from '../types.js';
import { onoffLine, openOnoffLine, type Level } from './line.js';

type Callback = (error: Error | null | undefined, value: 0 | 1) => void;

/** Stands in for an opened onoff Gpio: records calls, fires its watchers on demand. */
class FakeOnoffGpio {
  value: 0 | 1 = 0;
  failWith?: Error;
  readonly calls: string[] = [];
  readonly watchers: Callback[] = [];
  readSync(): 0 | 1 {
    if (this.failWith) throw this.failWith;
    return this.value;
  }
  writeSync(value: 0 | 1): void {
    if (this.failWith) throw this.failWith;
    this.calls.push(`write ${value}`);
  }
  watch(callback: Callback): void {
    this.watchers.push(callback);
  }
  unwatch(callback?: Callback): void {
    const index = this.watchers.indexOf(callback!);
    if (index >= 0) this.watchers.splice(index, 1);
  }
  unwatchAll(): void {
    this.calls.push('unwatchAll');
    this.watchers.length = 0;
  }
  unexport(): void {
    this.calls.push('unexport');
  }
  edge(error: Error | null, value: 0 | 1): void {
    for (const watcher of [...this.watchers]) watcher(error, value);
  }
}

describe('onoff line adapter', () => {
  it('passes levels through, and edges to the watcher until it unwatches', () => {
    const gpio = new FakeOnoffGpio();
    const line = onoffLine(gpio, 529);
    gpio.value = 1;
    assert.equal(line.read(), 1);
    line.write(0);
    const seen: Level[] = [];
    const onLevel = (level: Level) => seen.push(level);
    line.watch(onLevel);
    gpio.edge(null, 1);
    line.unwatch(onLevel);
    gpio.edge(null, 0);
    assert.deepEqual(seen, [1]);
    assert.deepEqual(gpio.calls, ['write 0']);
  });

  it('reports a failed edge to onError as a DriverError, not as a level', () => {
    const gpio = new FakeOnoffGpio();
    const line = onoffLine(gpio, 529);
    const seen: Level[] = [];
    const errors: DriverError[] = [];
    line.watch((level) => seen.push(level), (error) => errors.push(error));
    gpio.edge(Object.assign(new Error('EIO'), { code: 'EIO' }), 0);
    assert.deepEqual(seen, []);
    assert.equal(errors[0]?.code, 'GPIO_IO');
  });

  it('maps a permission failure while writing to GPIO_PERMISSION naming the value file', () => {
    const gpio = new FakeOnoffGpio();
    gpio.failWith = Object.assign(new Error('EACCES'), { code: 'EACCES' });
    const line = onoffLine(gpio, 529);
    assert.throws(
      () => line.write(1),
      (error) => error instanceof DriverError && error.code === 'GPIO_PERMISSION' && error.message.includes('/sys/class/gpio/gpio529/value'),
    );
  });

  it('release unwatches and unexports once, however often it is called', () => {
    const gpio = new FakeOnoffGpio();
    const line = onoffLine(gpio, 529);
    line.release();
    line.release();
    assert.deepEqual(gpio.calls, ['unwatchAll', 'unexport']);
  });

  it('opening a line where sysfs GPIO is missing is GPIO_UNAVAILABLE naming /sys/class/gpio/export', {
    skip: existsSync('/sys/class/gpio') && 'this machine has sysfs GPIO',
  }, () => {
    assert.throws(
      () => openOnoffLine(529, 'in', 'both'),
      (error) => error instanceof DriverError && error.code === 'GPIO_UNAVAILABLE' && error.message.includes('/sys/class/gpio/export'),
    );
  });
});
