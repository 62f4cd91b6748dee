// The dead-man output seen from outside the agent's thread, as the charge pump sees it: the agent
// (real controller, simulated vehicle and meter) toggles gpio.heartbeat on a fake sysfs line, and a
// worker thread polls that line's value file and stamps every edge. Blocking the agent's main
// thread (Atomics.wait, as a runaway loop or a stuck synchronous call would) must stop the edges
// within one period; the worker keeps polling through the block, which shows the silence is the
// agent's and not the observer's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../agent/config/load.js';
import { Agent } from '../agent/controller.js';
import { createMemoryLogger } from '../agent/logging/testing/memory-logger.js';
import { createGpioPulseOutput, pulseIdleDirection } from '../drivers/gpio/pulse-output.js';
import { fileLineOpener, makeSysfsRoot, PI5_CHIPS } from '../drivers/gpio/testing/fake-sysfs.js';
import { createSimHardware } from '../drivers/sim/sim-hardware.js';

const HEARTBEAT = 600;
const HZ = 50;
const PERIOD_MS = 1000 / HZ;
const BLOCK_MS = 600;

const tree = makeSysfsRoot(PI5_CHIPS);
const stateDir = mkdtempSync(join(tmpdir(), 'charger-dead-man-hil-'));
after(() => {
  tree.cleanup();
  rmSync(stateDir, { recursive: true, force: true });
});

/** Polls a value file every ~0.5 ms; counts polls and edges in shared memory, returns the edge times (epoch ms). */
const OBSERVER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const shared = new Int32Array(workerData.shared); // [stop, polls, edges]
const edges = [];
let last;
while (Atomics.load(shared, 0) === 0) {
  const text = readFileSync(workerData.path, 'utf8').trim();
  if (text === '0' || text === '1') {
    if (last !== undefined && text !== last) {
      edges.push(performance.timeOrigin + performance.now());
      Atomics.add(shared, 2, 1);
    }
    last = text;
  }
  Atomics.add(shared, 1, 1);
  Atomics.wait(shared, 0, 0, 0.5);
}
parentPort.postMessage(edges);
`;

const now = () => performance.timeOrigin + performance.now();

async function eventually(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the dead-man output, watched from another thread', () => {
  it('stops toggling within one period when the agent\'s main thread is blocked, and resumes after', async (t) => {
    const config = loadConfig({
      env: {},
      flags: { 'state-dir': stateDir, 'health-port': '0', 'http-port': '0', 'kafka-brokers': '', 'mqtt-url': '', 'meter-poll-ms': '50' },
    });
    config.sim.relayFollowMs = 0;
    config.gpio.heartbeatHz = HZ;
    const sim = createSimHardware({ ...config.sim, meterTimeoutMs: 100 });
    const heartbeat = createGpioPulseOutput(fileLineOpener(tree.root)(HEARTBEAT, pulseIdleDirection(false), 'none'), false);
    const log = createMemoryLogger();
    const agent = new Agent({
      config,
      log,
      hardware: { kind: 'sim', hardware: { ...sim.hardware, heartbeat }, createMeter: () => sim.simMeter, meterLabel: 'sim', simulation: sim.simulation },
      env: {},
    });
    await agent.start();
    t.after(() => agent.stop('test'));

    const shared = new Int32Array(new SharedArrayBuffer(12));
    const observer = new Worker(OBSERVER, { eval: true, workerData: { shared: shared.buffer, path: join(tree.root, `gpio${HEARTBEAT}`, 'value') } });
    const observed = new Promise<number[]>((resolve, reject) => {
      observer.once('message', resolve);
      observer.once('error', reject);
    });

    assert.equal(agent.handleLine('AUTORIZAR_SUMINISTRO#D1', '127.0.0.1'), 'ACK#AUTORIZAR_SUMINISTRO');
    sim.simulation.inject('plug', []);
    await eventually(() => Atomics.load(shared, 2) >= 10);

    const pollsBefore = Atomics.load(shared, 1);
    const blockedFromMs = now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BLOCK_MS); // the main thread stalls
    const blockedToMs = now();
    const pollsDuring = Atomics.load(shared, 1) - pollsBefore;
    const edgesAtUnblock = Atomics.load(shared, 2);
    await eventually(() => Atomics.load(shared, 2) >= edgesAtUnblock + 5);

    Atomics.store(shared, 0, 1);
    Atomics.notify(shared, 0);
    const edges = await observed;
    await observer.terminate();

    const before = edges.filter((at) => at < blockedFromMs);
    const silentFromMs = blockedFromMs + PERIOD_MS;
    const during = edges.filter((at) => at > silentFromMs && at < blockedToMs);
    const lastBefore = edges.filter((at) => at <= blockedToMs).at(-1)!;
    const message = `blocked ${(blockedToMs - blockedFromMs).toFixed(0)} ms: last edge ${(lastBefore - blockedFromMs).toFixed(1)} ms after the block began, ${during.length} edges later in the block; observer polled ${pollsDuring} times meanwhile; ${before.length} edges before`;
    t.diagnostic(message);
    console.log(message);
    assert.ok(pollsDuring > 100, `the observer kept polling through the block (${pollsDuring} polls)`);
    assert.ok(before.length >= 10, 'it toggled while charging');
    assert.deepEqual(during, [], 'no edge later than one period into the block');
    assert.ok(edges.some((at) => at > blockedToMs), 'edges resume once the loop runs again');
    assert.ok(log.lines.some((line) => line.event === 'heartbeat_gap' && Number(line.fields.gap_ms) >= BLOCK_MS - PERIOD_MS), 'the gap is logged');
  });
});
