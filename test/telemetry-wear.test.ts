// SD-card wear: bytes this process (and so the store's worker thread) writes (/proc/self/io) for one
// charging hour through the store —
// with Kafka acknowledging promptly, with Kafka down the whole hour, and, for comparison, committing
// every CONSUMO as it comes (what the store avoids). Simulated time, real SQLite, real files.
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createMemoryLogger } from '../agent/logging/testing/memory-logger.js';
import { openTelemetryStore } from '../agent/telemetry/store.js';
import { chargingSession } from '../agent/telemetry/testing/charging-session.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function processIo(): { wchar: number; writeBytes: number } {
  const text = readFileSync('/proc/self/io', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1]);
  return { wchar: field('wchar'), writeBytes: field('write_bytes') };
}

/** One hour of charging (3600 CONSUMO plus the session events), returning the bytes written meanwhile. */
async function chargingHour(options: { consumoFlushMs: number; kafkaAcks: boolean }) {
  const stateDir = mkdtempSync(join(tmpdir(), 'charger-wear-'));
  dirs.push(stateDir);
  const startMs = Date.parse('2025-03-01T10:00:00Z');
  let nowMs = startMs;
  const store = openTelemetryStore({
    stateDir,
    cpId: 'CP-WEAR',
    maxBytes: 64 * 1024 * 1024,
    consumoFlushMs: options.consumoFlushMs,
    ledgerCheckpointMs: 60_000,
    outbox: true,
    log: createMemoryLogger(),
    now: () => nowMs,
  });
  await store.opened;
  const before = processIo();
  for (const { atMs, event } of chargingSession({ cpId: 'CP-WEAR', driverId: 'D1', startMs, seconds: 3600 })) {
    nowMs = atMs;
    store.append(event);
    if (options.kafkaAcks) store.acknowledge(await store.nextBatch(100));
    store.maintain();
    await store.settled(); // one step at a time, as at one reading a second
  }
  await store.close();
  const afterIo = processIo();
  return { wchar: afterIo.wchar - before.wchar, writeBytes: afterIo.writeBytes - before.writeBytes };
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

describe('store wear', () => {
  it('writes a fraction of what committing every CONSUMO would, per charging hour', async (t) => {
    const prompt = await chargingHour({ consumoFlushMs: 30_000, kafkaAcks: true });
    const outage = await chargingHour({ consumoFlushMs: 30_000, kafkaAcks: false });
    const everySample = await chargingHour({ consumoFlushMs: 1, kafkaAcks: false });
    t.diagnostic(`Kafka acknowledging promptly: ${kib(prompt.wchar)} written (write_bytes ${kib(prompt.writeBytes)}) per charging hour`);
    t.diagnostic(`Kafka down all hour:          ${kib(outage.wchar)} written (write_bytes ${kib(outage.writeBytes)})`);
    t.diagnostic(`every CONSUMO committed:      ${kib(everySample.wchar)} written (write_bytes ${kib(everySample.writeBytes)})`);
    assert.ok(prompt.wchar > 0, '/proc/self/io counts our writes');
    assert.ok(prompt.wchar * 10 < everySample.wchar, 'prompt acknowledgements keep CONSUMO off the disk');
    assert.ok(outage.wchar * 3 < everySample.wchar, 'an outage commits CONSUMO in batches, not one by one');
  });
});
