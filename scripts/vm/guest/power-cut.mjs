// Power cuts: the agent's state directory is a virtio disk (ext4, qemu cache=directsync) and the
// host SIGKILLs qemu at a random point while sessions run. In each boot:
//   verify   the database as the cut left it: it opens, PRAGMA integrity_check is ok, every session
//            event the previous boot acknowledged (acks-<n>.jsonl) is in the ledger and the outbox;
//            after the agent starts, the sessions the cut left open are closed `interrupted`
//   workload sessions back to back; each session_started / session_ended the agent logs (it logs
//            them after the commit) is appended to /vm-run/acks-<round>.jsonl and fsync'ed: that
//            line is the acknowledgement "durable" the next boot holds the agent to
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { createChip, gpioGroupAccess, install, LINES, startContactor, startMeter } from './device.mjs';
import { fail, info, JournalFollower, log, mustRun, protocolLine, RUN, STAGE, until } from './lib.mjs';

const STATE_DIR = '/var/lib/charger-agent';
const DB = `${STATE_DIR}/charger-agent.db`;
// Kafka configured but unreachable: every session event stays in the outbox, where it is counted.
const KAFKA_OFF_HOST = `kafka:
  brokers: ['127.0.0.1:9']
`;

function openDatabase(readonly) {
  const Database = createRequire(`${STAGE}/package.json`)('better-sqlite3');
  return new Database(DB, { readonly, fileMustExist: true });
}

/** The state disk (/dev/vda: the only virtio disk; the 9p shares are not block devices), ext4 made by the host, on the agent's state directory. */
export async function mountStateDisk() {
  await mustRun('/usr/sbin/modprobe', ['-a', 'virtio_blk', 'ext4']);
  mkdirSync(STATE_DIR, { recursive: true });
  await until('/dev/vda', () => existsSync('/dev/vda'), { timeoutMs: 60_000 });
  await mustRun('/bin/mount', ['-t', 'ext4', '/dev/vda', STATE_DIR]);
}

function readAcks(round) {
  const file = `${RUN}/acks-${round}.jsonl`;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((line) => {
    try {
      return [JSON.parse(line)];
    } catch {
      return []; // a line the cut tore: it was not acknowledged
    }
  });
}

/** The database as the cut left it, before the agent touches it. */
function verifyAfterCut(acks) {
  const db = openDatabase(false);
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    const sessions = new Map(db.prepare('SELECT id, ended_at, end_reason FROM sessions').all().map((row) => [row.id, row]));
    const outbox = db.prepare("SELECT type, value FROM outbox WHERE type IN ('SESSION_STARTED', 'SUPPLY_END')").all().map((row) => ({ type: row.type, ...JSON.parse(row.value) }));
    const lost = [];
    for (const ack of acks) {
      const row = sessions.get(ack.session);
      if (ack.event === 'session_started') {
        if (!row) lost.push({ ...ack, missing: 'ledger row' });
        if (!outbox.some((event) => event.type === 'SESSION_STARTED' && event.session_id === ack.session)) lost.push({ ...ack, missing: 'outbox SESSION_STARTED' });
      } else {
        if (!row || row.ended_at === null || row.end_reason !== ack.reason) lost.push({ ...ack, missing: 'ledger end', row });
        if (!outbox.some((event) => event.type === 'SUPPLY_END' && event.session_id === ack.session && event.reason === ack.reason)) lost.push({ ...ack, missing: 'outbox SUPPLY_END' });
      }
    }
    const open = [...sessions.values()].filter((row) => row.ended_at === null).map((row) => row.id);
    return { integrity, sessions: sessions.size, outboxSessionEvents: outbox.length, acknowledged: acks.length, lost, openAtCut: open };
  } finally {
    db.close();
  }
}

function ackWriter(round) {
  const fd = openSync(`${RUN}/acks-${round}.jsonl`, 'a');
  let count = 0;
  return {
    write(entry) {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
      count += 1;
    },
    get count() {
      return count;
    },
    close: () => closeSync(fd),
  };
}

/** Sessions back to back until the host cuts the power; every committed start and end acknowledged. */
async function workload(chip, journal, round) {
  const acks = ackWriter(round);
  let seen = journal.mark();
  const forward = setInterval(() => {
    for (const entry of journal.entries.slice(seen)) {
      if (entry.event === 'session_started' || entry.event === 'session_ended') {
        acks.write({ event: entry.event, session: entry.fields.session, reason: entry.fields.reason });
      }
    }
    seen = journal.entries.length;
  }, 5);
  for (let n = 1; ; n += 1) {
    const mark = journal.mark();
    const reply = await protocolLine(`AUTORIZAR_SUMINISTRO#CUT-${round}-${n}`);
    if (!/^(OK|ACK)/.test(reply)) fail(`authorize answered ${reply}`);
    chip.pull(LINES.plug, true);
    await journal.waitFor('session_started', (e) => e.event === 'session_started', { from: mark, timeoutMs: 30_000 });
    // the car stays plugged in until it charges: a plug-in shorter than a stall of the emulated
    // agent's loop is never seen (both edges read the same level), as a 300 ms plug-in would not be
    await until('state charging', async () => (await info()).state === 'Charging', { timeoutMs: 30_000, everyMs: 100 });
    await sleep(300 + Math.random() * 1500);
    chip.pull(LINES.plug, false);
    await journal.waitFor('session_ended', (e) => e.event === 'session_ended', { from: mark, timeoutMs: 30_000 });
    await until('state available', async () => (await info()).state === 'Available', { timeoutMs: 20_000, everyMs: 100 });
    void forward;
  }
}

/** One boot of the power-cut series: verify what the previous cut left, then run sessions until cut. */
export async function powerCutRound(results, instructions) {
  const { round, last } = instructions;
  await mountStateDisk();
  if (round > 0) {
    const acks = readAcks(round - 1);
    await results.check('power_cut_database', async () => {
      const verdict = verifyAfterCut(acks);
      if (verdict.integrity !== 'ok') fail(`integrity_check: ${verdict.integrity}`, verdict);
      if (verdict.lost.length > 0) fail(`${verdict.lost.length} acknowledged session events missing`, verdict);
      return verdict;
    });
  }
  const journal = new JournalFollower('charger-agent.service');
  let chip;
  let openAtCut = [];
  await results.check('power_cut_agent_starts', async () => {
    if (existsSync(DB)) {
      const db = openDatabase(true);
      openAtCut = db.prepare('SELECT id FROM sessions WHERE ended_at IS NULL').all().map((row) => row.id);
      db.close();
    }
    chip = await createChip();
    await install({ label: chip.label, extraConfig: KAFKA_OFF_HOST });
    await gpioGroupAccess();
    await startContactor(chip);
    await startMeter();
    const mark = journal.mark();
    await mustRun('/bin/systemctl', ['start', 'charger-agent'], { timeoutMs: 600_000 });
    await journal.waitFor('agent_ready', (e) => e.event === 'agent_ready', { from: mark, timeoutMs: 30_000 });
    // READY does not wait for the store, which opens in its worker (slowly on an emulated CPU)
    await journal.waitFor('store_opened', (e) => e.event === 'store_opened', { from: mark, timeoutMs: 120_000 });
    const interrupted = [];
    for (const id of openAtCut) {
      const entry = await journal.waitFor(`session_interrupted ${id}`, (e) => e.event === 'session_interrupted' && e.fields.session === id, { from: mark, timeoutMs: 30_000 });
      interrupted.push(entry.fields);
    }
    const db = openDatabase(true);
    const stillOpen = db.prepare('SELECT id, end_reason FROM sessions WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(openAtCut));
    db.close();
    const notInterrupted = stillOpen.filter((row) => row.end_reason !== 'interrupted');
    if (notInterrupted.length > 0) fail('sessions open at the cut not closed interrupted', { notInterrupted });
    return { openAtCut, interrupted };
  });
  if (last) return;
  if (!results.data.checks.power_cut_agent_starts.ok) return;
  results.data.cutReady = true;
  results.save();
  log(`power-cut round ${round}: sessions until the host cuts the power`);
  await workload(chip, journal, round);
}
