import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMeterSim } from './simulator-cli.js';

const capture = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, options: { out: (line: string) => out.push(line), err: (line: string) => err.push(line) } };
};

test('--help prints the usage with every option and exits 0', async () => {
  const { out, options } = capture();
  assert.equal(await runMeterSim(['--help'], options), 0);
  for (const option of ['--path', '--model', '--unit', '--baud', '--power-w', '--corrupt', '--drop', '--delay-ms', '--control-port', '--state', '--serial', '--refuse-gaps']) {
    assert.ok(out.join('\n').includes(option), `usage mentions ${option}`);
  }
});

test('a missing --path or a bad value is a usage error (64) that says which', async () => {
  const missing = capture();
  assert.equal(await runMeterSim([], missing.options), 64);
  assert.match(missing.err.join('\n'), /--path is required/);
  const bad = capture();
  assert.equal(await runMeterSim(['--path', '/tmp/x', '--corrupt', '7'], bad.options), 64);
  assert.match(bad.err.join('\n'), /--corrupt must be a number from 0 to 1, got "7"/);
  const model = capture();
  assert.equal(await runMeterSim(['--path', '/tmp/x', '--model', 'sdm999'], model.options), 64);
  assert.match(model.err.join('\n'), /--model must be one of sdm630/);
});

test('a port that does not exist exits 69 with the fix', async () => {
  const { err, options } = capture();
  assert.equal(await runMeterSim(['--path', '/nonexistent/tty-for-test'], options), 69);
  assert.match(err.join('\n'), /METER_PORT_MISSING: \/nonexistent\/tty-for-test does not exist/);
});

test('a state file it cannot trust stops the start (69) instead of billing from a wrong register', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meter-sim-cli-'));
  try {
    const state = join(dir, 'meter.json');
    writeFileSync(state, '{"importKwh":"lots"}');
    const { err, options } = capture();
    assert.equal(await runMeterSim(['--path', '/nonexistent/tty-for-test', '--state', state], options), 69);
    assert.match(err.join('\n'), /SIM_STATE_CORRUPT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
