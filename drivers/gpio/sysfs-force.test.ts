import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DriverError } from '../types.js';
import { forceSysfsLevel } from './sysfs-force.js';
import { makeSysfsRoot, PI4_CHIPS } from './testing/fake-sysfs.js';

const tree = makeSysfsRoot(PI4_CHIPS);
after(() => tree.cleanup());

function exported(sysfs: number, files: Record<string, string>): string {
  const dir = join(tree.root, `gpio${sysfs}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('forcing a line through sysfs', () => {
  it('drives a line a killed agent left closed: physical level (active_low reset), output at the level, read back', () => {
    const dir = exported(529, { direction: 'out\n', active_low: '1\n', value: '1\n' });
    const result = forceSysfsLevel(tree.root, 529, 0);
    assert.deepEqual(result, { sysfs: 529, level: 0, exported: false, directionBefore: 'out', verified: true });
    assert.equal(readFileSync(join(dir, 'active_low'), 'utf8'), '0');
    assert.equal(readFileSync(join(dir, 'direction'), 'utf8'), 'low');
    assert.equal(readFileSync(join(dir, 'value'), 'utf8'), '0');
    assert.equal(readFileSync(join(tree.root, 'export'), 'utf8'), '', 'an exported line is not exported again');
  });

  it('an export whose gpioN/ never appears is GPIO_EXPORT_TIMEOUT after the wait, naming the line', () => {
    const startedMs = performance.now();
    assert.throws(
      () => forceSysfsLevel(tree.root, 540, 1, { exportWaitMs: 60 }),
      (error) => error instanceof DriverError && error.code === 'GPIO_EXPORT_TIMEOUT' && /GPIO 540/.test(error.message),
    );
    assert.ok(performance.now() - startedMs >= 60);
    assert.equal(readFileSync(join(tree.root, 'export'), 'utf8'), '540');
  });
});
