// The meter simulator as an integrator meets it: `charger-agent meter-sim` on one end of a socat pty
// pair, read on the other end by a Modbus master nobody here wrote (mbpoll from Debian, on
// libmodbus); and its import register kept across a kill -9 with --state.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { loadSimState, STATE_SAVE_EVERY_MS } from '../drivers/meter/sim-state-file.js';
import { pollUntil, skipWithoutSocat, startMeterSim, startSocat, tempDir } from './support/meter-rig.js';

const exec = promisify(execFile);
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const MBPOLL_MISSING = spawnSync('mbpoll', ['-V']).error !== undefined;
const skip = skipWithoutSocat || (MBPOLL_MISSING && !IN_CI ? 'mbpoll is not installed (apt-get install mbpoll)' : false);
const POWER_W = 7400;
const KWH_PER_MS = POWER_W / 3_600_000_000;
/** Half a float32 step at ~1234 kWh: truth() serves the register as the meter does, as a float32. */
const FLOAT32_HALF_STEP_KWH = 0.000062;

/** One poll by mbpoll (PDU addresses, 9600 8N1, unit 1); the values it printed, in order. */
async function mbpoll(path: string, args: string[]): Promise<string[]> {
  assert.ok(!MBPOLL_MISSING, 'mbpoll is required with CI=true: scripts/test-services.sh installs it as root (apt-get install mbpoll)');
  const { stdout } = await exec('mbpoll', ['-m', 'rtu', '-a', '1', '-b', '9600', '-P', 'none', '-s', '1', '-d', '8', '-0', '-1', '-o', '3', ...args, path], { timeout: 30_000 });
  return [...stdout.matchAll(/^\[\d+\]:\s+(\S+)\s*$/gm)].map((match) => match[1]!);
}

describe('meter-sim read by an independent Modbus master over a pty', { skip }, () => {
  it('mbpoll reads the frequency (function 04, float), setup registers (function 03) and a one-register read', { timeout: 90_000 }, async (t) => {
    const pair = await startSocat(t, tempDir(t));
    const sim = await startMeterSim(t, pair.meterPath, ['--serial', '21070042']);

    assert.deepEqual(await mbpoll(pair.agentPath, ['-B', '-t', '3:float', '-r', String(0x46)]), ['50'], 'frequency, Hz (0x0046)');
    assert.deepEqual(await mbpoll(pair.agentPath, ['-B', '-t', '4:float', '-r', String(0x14)]), ['1'], 'Modbus node address (holding 0x0014)');
    assert.deepEqual(await mbpoll(pair.agentPath, ['-B', '-t', '4:float', '-r', String(0x1c)]), ['2'], 'baud code 2 = 9600 (holding 0x001C)');
    assert.deepEqual(await mbpoll(pair.agentPath, ['-B', '-t', '4:int', '-r', String(0xfc00)]), ['21070042'], 'serial number (holding 0xFC00)');
    assert.deepEqual(await mbpoll(pair.agentPath, ['-t', '3:hex', '-r', String(0x46)]), ['0x4248'], 'one register: the high word of 50.0');
    const wide = await mbpoll(pair.agentPath, ['-B', '-t', '3:float', '-r', '0', '-c', '38']);
    assert.equal(wide.length, 38, 'a 76-register read');
    assert.deepEqual(wide.slice(0, 3), ['230', '230.6', '229.1'], 'the phase voltages');

    const served = (await sim.truth()).served.map((answer) => answer.request);
    assert.ok(served.some((request) => request.functionCode === 4 && request.count === 1 && request.address === 0x46), 'the one-register read reached the simulator as such');
    assert.ok(served.some((request) => request.functionCode === 3 && request.address === 0xfc00));
  });

  it(`keeps its import register across a kill -9 with --state, lagging by at most ${STATE_SAVE_EVERY_MS} ms of energy`, { timeout: 90_000 }, async (t) => {
    const dir = tempDir(t);
    const pair = await startSocat(t, dir);
    const state = join(dir, 'meter-state.json');
    const first = await startMeterSim(t, pair.meterPath, ['--state', state, '--power-w', String(POWER_W)]);
    // it saved at start; wait (bounded) until it saved twice more while the register moved
    const saves = new Set<string>();
    const saved = () => {
      const savedAt = loadSimState(state)?.savedAt;
      if (savedAt) saves.add(savedAt);
      return saves.size >= 3;
    };
    await pollUntil('two periodic saves of the state file', saved, 10_000, first.child);
    const before = await first.truth();
    const exited = once(first.child, 'exit');
    first.child.kill('SIGKILL');
    const killedAtMs = Date.now();
    await exited;
    const atKillKwh = before.values.importKwh + (killedAtMs - before.atMs) * KWH_PER_MS;

    const second = await startMeterSim(t, pair.meterPath, ['--state', state, '--power-w', '0']);
    const restartedKwh = (await second.truth()).values.importKwh;
    const lagKwh = atKillKwh - restartedKwh;
    t.diagnostic(`register ${atKillKwh.toFixed(6)} kWh at the kill, ${restartedKwh} kWh after the restart: ${(lagKwh * 1000).toFixed(3)} Wh lost (${(lagKwh / KWH_PER_MS).toFixed(0)} ms at ${POWER_W} W)`);
    // two periodic saves came after the one at start: at least one save interval of energy was kept (float32 on the wire)
    assert.ok(restartedKwh > 1234.5 + STATE_SAVE_EVERY_MS * KWH_PER_MS, `the register did not start again at 1234.5: ${restartedKwh}`);
    assert.ok(lagKwh >= -FLOAT32_HALF_STEP_KWH, `never more than the meter had counted: lag ${lagKwh}`);
    // the save interval, plus a scheduling slack of 500 ms for a loaded machine
    assert.ok(lagKwh <= (STATE_SAVE_EVERY_MS + 500) * KWH_PER_MS + FLOAT32_HALF_STEP_KWH, `lag ${lagKwh * 1000} Wh`);
    assert.equal(await second.control('power 0'), 'OK');
    assert.ok(Math.abs((await second.truth()).values.importKwh - restartedKwh) <= FLOAT32_HALF_STEP_KWH, 'the restarted register stands still at 0 W');
  });
});
