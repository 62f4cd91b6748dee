import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadSimState, saveSimState, SimStateSaver } from './sim-state-file.js';

const dir = mkdtempSync(join(tmpdir(), 'sim-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a saved register loads back exactly, and no temporary file is left', async () => {
  const path = join(dir, 'roundtrip', 'meter.json');
  assert.equal(loadSimState(path), undefined, 'no file yet: no state');
  await saveSimState(path, 1234.5678901234, Date.UTC(2026, 0, 1));
  assert.deepEqual(loadSimState(path), { importKwh: 1234.5678901234, savedAt: '2026-01-01T00:00:00.000Z' });
  assert.deepEqual(readdirSync(join(dir, 'roundtrip')), ['meter.json']);
});

test('a file without a valid register is refused with SIM_STATE_CORRUPT, never read as 0', () => {
  const path = join(dir, 'corrupt.json');
  for (const text of ['{"importKwh":"12"}', '{"importKwh":-1}', '{}']) {
    writeFileSync(path, text);
    assert.throws(() => loadSimState(path), /SIM_STATE_CORRUPT/);
  }
  writeFileSync(path, '{"importKwh": 12');
  assert.throws(() => loadSimState(path), SyntaxError);
});

test('the saver writes when the register moved and once more at stop', async () => {
  const path = join(dir, 'saver.json');
  let kwh = 10;
  const saver = new SimStateSaver(path, () => kwh);
  await saver.start();
  assert.equal(loadSimState(path)?.importKwh, 10);
  kwh = 10.5;
  await saver.save();
  assert.equal(loadSimState(path)?.importKwh, 10.5);
  kwh = 10.75;
  assert.equal(await saver.stop(), 10.75);
  assert.equal(loadSimState(path)?.importKwh, 10.75);
});

test('a directory it cannot write is reported in lastError, and the meter runs on', async () => {
  const blocker = join(dir, 'file-not-dir');
  writeFileSync(blocker, '');
  const saver = new SimStateSaver(join(blocker, 'meter.json'), () => 1);
  await saver.start();
  assert.match(saver.lastError ?? '', /ENOTDIR|EEXIST/);
  await saver.stop();
});
