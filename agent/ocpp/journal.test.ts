import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { JOURNAL_FILE, Journal, replayJournal, type JournalRecord, type MessageRecord } from './journal.js';

const msg = (seq: number, session: string, action: MessageRecord['action'], energyWh?: number): MessageRecord => ({
  t: 'msg',
  seq,
  session,
  action,
  payload: action === 'StartTransaction' ? { idTag: 'D1', meterStart: energyWh } : {},
  energyWh,
  atMs: 1000 * seq,
});
const lines = (records: JournalRecord[]) => records.map((r) => JSON.stringify(r) + '\n').join('');

describe('OCPP journal replay', () => {
  it('gives back what was not acknowledged, in seq order, with the transaction ids', () => {
    const state = replayJournal(
      lines([msg(1, 'S1', 'StartTransaction', 100), { t: 'ack', seq: 1 }, { t: 'txid', session: 'S1', id: 7 }, msg(2, 'S1', 'MeterValues', 150), msg(3, 'S1', 'StopTransaction', 200)]),
    );
    assert.deepEqual(state.pending.map((m) => m.seq), [2, 3]);
    assert.equal(state.transactionIds.get('S1'), 7);
    assert.equal(state.open.size, 0, 'a stopped transaction is not open');
    assert.equal(state.nextSeq, 4);
  });

  it('finds a transaction a crash left open, with the last register it journaled', () => {
    const state = replayJournal(lines([msg(1, 'S1', 'StartTransaction', 100), { t: 'ack', seq: 1 }, msg(2, 'S1', 'MeterValues', 180), { t: 'ack', seq: 2 }]));
    assert.deepEqual(state.open.get('S1'), { session: 'S1', idTag: 'D1', lastEnergyWh: 180, lastAtMs: 2000 });
    assert.equal(state.pending.length, 0);
  });

  it('drops a torn last line and counts a damaged line in the middle without losing the others', () => {
    const whole = lines([msg(1, 'S1', 'StartTransaction', 100), msg(2, 'S1', 'MeterValues', 110)]);
    const torn = whole + JSON.stringify(msg(3, 'S1', 'StopTransaction', 120)).slice(0, 25);
    const state = replayJournal(torn);
    assert.deepEqual(state.pending.map((m) => m.seq), [1, 2]);
    assert.equal(state.validBytes, Buffer.byteLength(whole));
    const damaged = replayJournal(lines([msg(1, 'S1', 'StartTransaction', 100)]) + '{"t":"msg","se\u0000\u0000\n' + lines([msg(3, 'S1', 'MeterValues', 130)]));
    assert.deepEqual(damaged.pending.map((m) => m.seq), [1, 3]);
    assert.equal(damaged.badLines, 1);
  });

  it('keeps the last value of each persisted configuration key', () => {
    const state = replayJournal(lines([{ t: 'config', key: 'MeterValueSampleInterval', value: '10' }, { t: 'config', key: 'MeterValueSampleInterval', value: '20' }]));
    assert.equal(state.config.get('MeterValueSampleInterval'), '20');
  });
});

describe('OCPP journal on disk', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'ocpp-journal-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('replays what concurrent appends wrote, in order, after a reopen', async () => {
    const { journal } = await Journal.open(dir);
    await Promise.all([1, 2, 3, 4, 5].map((seq) => journal.append(msg(seq, 'S1', seq === 1 ? 'StartTransaction' : 'MeterValues', seq * 10))));
    await journal.close();
    const { journal: again, state } = await Journal.open(dir);
    await again.close();
    assert.deepEqual(state.pending.map((m) => m.seq), [1, 2, 3, 4, 5]);
  });

  it('cuts a torn tail at open, so the next record starts on a line of its own', async () => {
    const { journal } = await Journal.open(dir);
    await journal.append(msg(1, 'S1', 'StartTransaction', 100));
    await journal.close();
    await appendFile(join(dir, JOURNAL_FILE), '{"t":"msg","seq":2,"sess');
    const reopened = await Journal.open(dir);
    await reopened.journal.append(msg(2, 'S1', 'StopTransaction', 200));
    await reopened.journal.close();
    const { journal: last, state } = await Journal.open(dir);
    await last.close();
    assert.deepEqual(state.pending.map((m) => [m.seq, m.action]), [[1, 'StartTransaction'], [2, 'StopTransaction']]);
    assert.equal(state.badLines, 0);
  });

  it('compacts to the records it is asked to keep once it has grown and nothing is owed, and appends after that', async () => {
    const path = join(dir, JOURNAL_FILE);
    const { journal } = await Journal.open(dir);
    for (let seq = 1; seq <= 400; seq++) await journal.append({ ...msg(seq, 'S1', 'MeterValues', seq), payload: { pad: 'x'.repeat(200) } });
    assert.ok((await stat(path)).size > 64 * 1024);
    const config: JournalRecord[] = [{ t: 'config', key: 'HeartbeatInterval', value: '60' }];
    await journal.compact(() => config, () => false);
    assert.ok((await stat(path)).size > 64 * 1024, 'no rewrite while something is owed');
    await journal.compact(() => config, () => true);
    await journal.append({ t: 'ack', seq: 1 });
    await journal.close();
    const text = await readFile(path, 'utf8');
    assert.deepEqual(text.trim().split('\n').map((l) => JSON.parse(l).t), ['config', 'ack']);
  });

  it('never rewrites away a record appended while the compaction waited for earlier writes', async () => {
    const { journal } = await Journal.open(dir);
    for (let seq = 1; seq <= 400; seq++) await journal.append({ ...msg(seq, 'S1', 'MeterValues', seq), payload: { pad: 'x'.repeat(200) } });
    let owed = false;
    const pending = journal.append({ t: 'ack', seq: 400 }); // in flight when the compaction starts
    const compaction = journal.compact(() => [], () => !owed);
    owed = true; // a new transaction begins before the compaction got its turn
    const started = journal.append(msg(401, 'S2', 'StartTransaction', 500));
    await Promise.all([pending, compaction, started]);
    await journal.close();
    const { journal: again, state } = await Journal.open(dir);
    await again.close();
    assert.ok(state.pending.some((m) => m.seq === 401), 'the new StartTransaction is still on disk');
  });
});
