import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createSimHardware, type SimHardware } from '../../drivers/sim/sim-hardware.js';
import { SimPulseOutput } from '../../drivers/sim/sim-pulse-output.js';
import { loadConfig } from '../config/load.js';
import { createHardware } from '../hardware.js';
import { Agent } from '../controller.js';
import { createLogger } from '../logging/logger.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { DeadManPulse } from './dead-man.js';

const HZ = 50;
const PERIOD_MS = 1000 / HZ;

let stateDir: string;
let agent: Agent | undefined;

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'charger-dead-man-'));
});
afterEach(async () => {
  await agent?.stop('test');
  agent = undefined;
  rmSync(stateDir, { recursive: true, force: true });
});

async function eventually(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Lets the event loop run for an observation window. */
const observe = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function chargingAgent(): Promise<{ agent: Agent; sim: SimHardware }> {
  const config = loadConfig({
    env: {},
    flags: { 'state-dir': stateDir, 'health-port': '0', 'http-port': '0', 'kafka-brokers': '', 'mqtt-url': '', 'meter-poll-ms': '50' },
  });
  config.sim.relayFollowMs = 0;
  assert.equal(config.gpio.heartbeatHz, HZ, 'the default frequency');
  const sim = createSimHardware({ ...config.sim, meterTimeoutMs: 100, heartbeat: true });
  agent = new Agent({
    config,
    log: createLogger({ write: () => {} }),
    hardware: { kind: 'sim', hardware: sim.hardware, createMeter: () => sim.simMeter, meterLabel: 'sim', simulation: sim.simulation },
    env: {},
  });
  await agent.start();
  return { agent, sim };
}

function state(a: Agent): string {
  return (JSON.parse(a.handleLine('INFO', '127.0.0.1')) as { state: string }).state;
}

describe('the dead-man output', () => {
  it('toggles at gpio.heartbeatHz while charging and is still while the relay is open', async () => {
    const { agent: a, sim } = await chargingAgent();
    await observe(100);
    assert.deepEqual(sim.heartbeat!.edgesMs, [], 'no edges while idle');

    assert.equal(a.handleLine('AUTORIZAR_SUMINISTRO#D1', '127.0.0.1'), 'ACK#AUTORIZAR_SUMINISTRO');
    sim.simulation.inject('plug', []);
    await eventually(() => state(a) === 'Charging');
    const from = sim.heartbeat!.edgesMs.length;
    await observe(500);
    const edges = sim.heartbeat!.edgesMs.length - from;
    // 50 Hz is 100 edges a second: 50 in 500 ms. A loaded machine may give fewer (the rate is a bench
    // figure, not asserted here); it toggles, and never faster than the configured frequency.
    assert.ok(edges >= 3 && edges <= 55, `expected up to 50 edges in 500 ms at ${HZ} Hz, got ${edges}`);
  });

  it('stops within one period of the relay opening (e-stop), held at the idle level', async () => {
    const { agent: a, sim } = await chargingAgent();
    a.handleLine('AUTORIZAR_SUMINISTRO#D1', '127.0.0.1');
    sim.simulation.inject('plug', []);
    await eventually(() => state(a) === 'Charging' && sim.heartbeat!.edgesMs.length > 10);

    sim.simulation.inject('estop', ['on']);
    const openedMs = performance.now();
    assert.equal(sim.simRelay.isCommandedClosed, false);
    await observe(10 * PERIOD_MS);
    const late = sim.heartbeat!.edgesMs.filter((at) => at > openedMs + PERIOD_MS);
    assert.deepEqual(late, [], 'no edge later than one period after the relay opened');
    assert.equal(sim.heartbeat!.level, 0, 'held at the idle level');
  });

  it('the simulation has a dead-man output only when gpio.heartbeat is configured (its timer costs CPU)', async () => {
    const flags = { hardware: 'sim', 'state-dir': stateDir };
    const without = await createHardware(loadConfig({ env: {}, flags }), createMemoryLogger());
    assert.equal(without.hardware.heartbeat, undefined);
    const config = loadConfig({ env: {}, flags });
    config.gpio.heartbeat = { sysfs: 600, activeLow: false };
    const withPin = await createHardware(config, createMemoryLogger());
    assert.ok(withPin.hardware.heartbeat instanceof SimPulseOutput);
    await without.hardware.release();
    await withPin.hardware.release();
  });

  it('logs a gap when the loop could not toggle for five periods, and a write failure once', () => {
    const log = createMemoryLogger();
    const output = new SimPulseOutput();
    let fail = false;
    const toggle = output.toggle.bind(output);
    output.toggle = () => {
      if (fail) throw new Error('EIO');
      toggle();
    };
    const pulse = new DeadManPulse(output, HZ, log);
    pulse.follow(true);
    assert.equal(pulse.running, true);
    assert.equal(output.edgesMs.length, 1, 'the first edge comes at once');
    const started = performance.now();
    while (performance.now() - started < 6 * PERIOD_MS) {
      // the loop is busy: no timer runs
    }
    return new Promise<void>((resolve) => {
      setTimeout(() => {
        fail = true;
        setTimeout(() => {
          pulse.follow(false);
          assert.equal(pulse.running, false);
          const gaps = log.lines.filter((line) => line.event === 'heartbeat_gap');
          assert.ok(gaps.length >= 1 && Number(gaps[0]!.fields.gap_ms) >= 5 * PERIOD_MS, JSON.stringify(gaps));
          assert.equal(log.lines.filter((line) => line.event === 'heartbeat_failed').length, 1, 'one line per failure streak');
          resolve();
        }, 3 * PERIOD_MS);
      }, PERIOD_MS);
    });
  });
});
