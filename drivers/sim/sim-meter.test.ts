import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SimMeter, type SimMeterOptions } from './sim-meter.js';

const dir = mkdtempSync(join(tmpdir(), 'sim-meter-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function meter(extra: Partial<SimMeterOptions>, clock: { ms: number }): SimMeter {
  return new SimMeter({ powerW: 7400, initialImportKwh: 1234.5, voltageV: 230, phases: 3, timeoutMs: 100, flowing: () => true, now: () => clock.ms, ...extra });
}

test('with a state file, the simulated meter continues from its register after a restart instead of 1234.5', async () => {
  const clock = { ms: 1_700_000_000_000 };
  const statePath = join(dir, 'sim-meter.json');
  const first = meter({ statePath }, clock);
  await first.open();
  clock.ms += 3_600_000;
  assert.ok(Math.abs((await first.read()).importKwh - 1241.9) < 1e-9);
  await first.close();

  const second = meter({ statePath }, clock);
  await second.open();
  assert.ok(Math.abs((await second.read()).importKwh - 1241.9) < 1e-9, 'the register the first one ended on');
  await second.close();
});

test('without a state file it starts at its initial register every time', async () => {
  const clock = { ms: 1_700_000_000_000 };
  const sim = meter({}, clock);
  assert.equal((await sim.read()).importKwh, 1234.5);
});
