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
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startAgent, stopAllAgents } from './support/agent-process.js';
import { readTopic } from './support/kafka-topic.js';
import { requireBrokers } from './support/services.js';
import { buildSlowFsyncShim, deliveryCheck, driveSlowStorageScenario, ledgerCheck } from './support/slow-storage-rig.js';

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
  buildSlowFsyncShim(shim);
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
});
after(async () => {
  await stopAllAgents();
  rmSync(work, { recursive: true, force: true });
});

const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * 0.99))]!;

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
    // Sessions: one unplugged, five ended by an e-stop, one by the protection device tripping.
    const { statusMs: took, estopMs: estops, storeOpenMs, started, ended } = await driveSlowStorageScenario(agent, 5);

    // The stall ends: what waited in memory is committed and delivered.
    writeFileSync(stallFile, '0');
    const messages = await readTopic(kafkaBrokers, topic, (all) => ended.every((id) => all.some((m) => m.type === 'SUPPLY_END' && m.session_id === id)), 60_000);
    agent.kill('SIGTERM');
    assert.equal((await agent.exited).code, 0);

    const summary = `(targets: READY ${READY_TARGET_MS} ms, STATUS? ${STATUS_TARGET_MS} ms, e-stop ${ESTOP_TARGET_MS} ms) READY ${readyMs.toFixed(0)} ms, store opened ${storeOpenMs} ms after it was asked; STATUS? ${took.length} checks, p99 ${p99(took).toFixed(1)} ms, max ${Math.max(...took).toFixed(1)} ms; e-stop ACK (relay already open) max ${Math.max(...estops).toFixed(1)} ms`;
    t.diagnostic(summary);
    console.log(summary);
    assert.ok(readyMs < READY_BOUND_MS, summary);
    assert.ok(Math.max(...took) < STATUS_BOUND_MS, summary);
    assert.ok(Math.max(...estops) < ESTOP_BOUND_MS, summary);

    assert.deepEqual(ledgerCheck(agent.stateDir, started), { missing: [], unexpected: [], notClosed: [] }, 'every session in the ledger, each closed');
    // no message twice, SESSION_STARTED and SUPPLY_END of each session once, seq 1, 2, 3 … in order, no gap
    assert.deepEqual(deliveryCheck(started, messages), { missing: [], duplicated: [], seqInOrder: true });
  });
});
