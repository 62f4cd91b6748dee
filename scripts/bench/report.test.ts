import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SlowStoragePart, SlowStorageRun } from './parts.js';
import { buildRows, renderMarkdown, renderTable } from './report.js';
import type { Results } from './results.js';
import { loadSettings } from './settings.js';

function run(stallMs: number, overrides: Partial<SlowStorageRun> = {}): SlowStorageRun {
  return {
    stallMs,
    readyMs: 900,
    storeOpenMs: 400,
    statusMs: { n: 1000, p50: 1.5, p99: 10, max: 30 },
    estopMs: { n: 30, p50: 3, p99: 8, max: 8 },
    sessions: 32,
    kafka: { messages: 260, missing: 0, duplicated: 0, seqInOrder: true, drainedS: 0.3 },
    ledger: { sessions: 32, missing: 0, notClosed: 0 },
    exitCode: 0,
    loadavgBefore: '0.10 0.20 0.30',
    loadavgAfter: '0.40 0.50 0.60',
    elapsedS: 90,
    ...overrides,
  };
}

function resultsWith(part: SlowStoragePart): Results {
  return {
    date: '2026-12-02T01:00:00.000Z',
    elapsedS: 300,
    machine: { uname: 'Linux test', cpuModel: 'Test CPU', cores: 2, memoryGiB: 4, node: 'v20.0.0', arch: 'x64' },
    backgroundLoad: { busyShare: 0.05, loadavg: '0.10 0.20 0.30' },
    settings: loadSettings({}),
    telemetryTopicTimestamps: 'not checked (BENCH_ONLY run)',
    parts: { slowStorage: { ok: true, data: part } },
    reruns: [{ part: 'slow-storage', date: '2026-12-02T01:00:00.000Z', loadavg: '0.10 0.20 0.30' }],
  };
}

const slowRows = (results: Results) => buildRows(results).filter((row) => row.section === '7 Slow SD card');

describe('bench report: slow SD card rows', () => {
  it('marks each figure met only when it is under its target: STATUS? p99 50 ms, e-stop p99 20 ms, READY 2 s', () => {
    const results = resultsWith({
      date: '2026-12-02T01:00:00.000Z',
      pollEveryMs: 20,
      estopsPerRun: 30,
      runs: [
        run(0),
        run(2000, { statusMs: { n: 900, p50: 2, p99: 50, max: 900 }, estopMs: { n: 30, p50: 5, p99: 20, max: 20 }, readyMs: 2000 }),
      ],
    });
    const met = Object.fromEntries(slowRows(results).map((row) => [row.figure.replace(/ \(.*?\)/g, ''), row.met]));
    assert.deepEqual(met, {
      'normal fsync: STATUS? every 20 ms, p50 / p99 / max': true,
      'normal fsync: e-stop → relay open, p50 / p99 / max': true,
      'normal fsync: start-up to READY': true,
      'normal fsync: after the sessions, session events lost / duplicated on Kafka': true,
      'fsync +2000 ms: STATUS? every 20 ms, p50 / p99 / max': false,
      'fsync +2000 ms: e-stop → relay open, p50 / p99 / max': false,
      'fsync +2000 ms: start-up to READY': false,
      'fsync +2000 ms: once the stall ended, session events lost / duplicated on Kafka': true,
      'Load on the box during each run': undefined,
    });
  });

  it('fails the delivery row on a duplicate, a seq gap, a session missing from the ledger or an unclean exit', () => {
    const broken: Array<Partial<SlowStorageRun>> = [
      { kafka: { messages: 261, missing: 0, duplicated: 1, seqInOrder: true, drainedS: 0.3 } },
      { kafka: { messages: 260, missing: 0, duplicated: 0, seqInOrder: false, drainedS: 0.3 } },
      { ledger: { sessions: 31, missing: 1, notClosed: 0 } },
      { exitCode: 1 },
    ];
    for (const overrides of broken) {
      const results = resultsWith({ date: '2026-12-02T01:00:00.000Z', pollEveryMs: 20, estopsPerRun: 30, runs: [run(500, overrides)] });
      const delivery = slowRows(results).find((row) => row.figure.includes('lost / duplicated'));
      assert.equal(delivery?.met, false, JSON.stringify(overrides));
    }
  });

  it('renders with only this part run: the other sections read "not run" once each, and the re-run and any single answer over target are named', () => {
    const results = resultsWith({
      date: '2026-12-02T01:00:00.000Z',
      pollEveryMs: 20,
      estopsPerRun: 30,
      runs: [run(500, { statusMs: { n: 900, p50: 2, p99: 12, max: 61.5 }, controlMs: { n: 910, p50: 0.5, p99: 3, max: 58 } })],
    });
    const notRun = buildRows(results).filter((row) => row.figure === 'not run').map((row) => row.section);
    assert.deepEqual(notRun, ['1 Health checks', '2 Fault reaction', '3 Footprint', '4 Telemetry', '5 Meter link', '6 Fleet']);
    const table = renderTable(results, buildRows(results));
    assert.match(table, /re-run: slow-storage run alone with BENCH_ONLY on 2026-12-02 01:00 UTC/);
    const markdown = renderMarkdown(results, buildRows(results));
    assert.match(
      markdown,
      /\| fsync \+500 ms: STATUS\? every 20 ms \(900 checks\), p50 \/ p99 \/ max \| 2\.00 ms \/ 12\.00 ms \/ 61\.50 ms \(a bare Node OK server polled the same way beside it: 0\.50 ms \/ 3\.00 ms \/ 58\.00 ms\) \| p99 < 50 ms \| yes \|/,
    );
    assert.match(markdown, /over in this run: STATUS\? max 61\.5 ms with fsync \+500 ms/);
  });
});

describe('bench settings', () => {
  it('reads the fsync stalls as a list of whole milliseconds, 0 included, ignoring empty items', () => {
    assert.deepEqual(loadSettings({ BENCH_SLOW_STALLS_MS: '0, 500,,2000,' }).slowStorage.stallsMs, [0, 500, 2000]);
    assert.deepEqual(loadSettings({}).slowStorage, { stallsMs: [0, 500, 2000], estops: 30 });
    assert.equal(loadSettings({ BENCH_QUICK: '1' }).slowStorage.estops, 5);
  });
});
