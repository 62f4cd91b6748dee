// A session a crash (a store in another process, killed with SIGKILL) left open is closed with the
// best reading that survived: the first after the restart, its last CONSUMO, its checkpoint.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { readLedger, storePath } from '../store.js';
import { chargingSession } from '../testing/charging-session.js';
import { CP, Clock, T0, Writer, consumo, deliver, onDisk, open, put, started, status, tempDir } from '../testing/store-fixtures.js';

describe('telemetry store: interrupted sessions', () => {
  /** A session charging 20 s (CONSUMO acknowledged by Kafka as they come), then kill -9. */
  async function crashedSession(dir: string, seconds: number, checkpointMs = 60_000): Promise<void> {
    const writer = new Writer(dir, checkpointMs);
    const clock = new Clock();
    await writer.at(clock.ms);
    await writer.send(started(clock));
    await writer.send({ ...status(clock), session_id: 'S1', meter_import_kwh: 1000 });
    for (let second = 1; second <= seconds; second += 1) {
      clock.advance(1000);
      await writer.at(clock.ms);
      await writer.send(consumo(clock, second / 1000));
      await writer.send({ op: 'deliver' });
      await writer.send({ op: 'maintain' });
    }
    await writer.kill();
  }

  it('never closes as interrupted a session this run started, even one that began before the store had opened', async () => {
    const dir = tempDir();
    await crashedSession(dir, 5);
    const clock = new Clock(T0 + 50_000);
    const { store } = open(dir, clock);
    // the controller authorizes a driver at once: its SESSION_STARTED waits for the store to open
    store.append(started(clock, 'S2'));
    const recovered = await store.recoverInterrupted({ importKwh: 1000.005, takenAtMs: clock.ms, pricePerKwh: 0.2 });
    assert.deepEqual(recovered.map((r) => r.session.id), ['S1'], 'only the session the crash left open');
    await store.settled();
    const s2 = (await store.listSessions(10)).find((session) => session.id === 'S2');
    assert.equal(s2?.endedAt, undefined, 'the live session stays open in the ledger');
    await store.close();
  });

  it('closes an interrupted session with the first reading after the restart, which the meter counted while the ledger slept', async () => {
    const dir = tempDir();
    await crashedSession(dir, 20);
    const clock = new Clock(T0 + 50_000);
    const { store } = open(dir, clock);
    const [recovered] = await store.recoverInterrupted({ importKwh: 1000.021, takenAtMs: clock.ms, pricePerKwh: 0.2 });
    assert.equal(recovered?.closedWith, 'first_reading_after_restart');
    assert.equal(recovered?.session.kwh, 0.021);
    assert.equal(recovered?.event.kwh, 0.021);
    assert.equal(recovered?.event.importe, 0.0042);
    assert.equal(recovered?.event.meter_import_kwh, 1000.021);
    assert.equal(await recovered?.durable, true, 'its end committed');
    assert.equal((await store.listSessions(1))[0]?.kwh, 0.021, 'the ledger bills it too');
    await store.close();
  });

  it('rejects an implausible or backwards register after a restart and bills the newest reading that survived the crash, saying which and why', async () => {
    for (const [importKwh, why] of [
      [999.5, 'register_went_backwards'],
      [1000 + 50 * 2, 'implausible_jump'],
    ] as const) {
      const dir = tempDir();
      await crashedSession(dir, 20);
      const clock = new Clock(T0 + 80_000);
      const { store } = open(dir, clock);
      const [recovered] = await store.recoverInterrupted({ importKwh, takenAtMs: clock.ms, pricePerKwh: 0.2 });
      assert.equal(recovered?.rejected, why);
      assert.equal(recovered?.closedWith, 'last_durable_consumo', 'the 20th CONSUMO, reported to Kafka, not the start');
      assert.equal(recovered?.consumoSource, 'seq_mark');
      assert.equal(recovered?.event.kwh, 0.02, `register ${importKwh} is not billed; the last CONSUMO is`);
      assert.equal(recovered?.event.ended_at, new Date(T0 + 20_000).toISOString());
      await store.close();
    }
  });

  it('without a reading after the restart, closes the session with the newer of its ledger checkpoint and its last CONSUMO, never its start', async () => {
    const dir = tempDir();
    await crashedSession(dir, 90, 60_000);
    const clock = new Clock(T0 + 200_000);
    const { store, log } = open(dir, clock);
    const interrupted = await store.recoverInterrupted();
    assert.equal(interrupted.length, 1);
    const [{ session, event, closedWith, rejected }] = interrupted as [(typeof interrupted)[number]];
    assert.equal(session.id, 'S1');
    assert.equal(session.endReason, 'interrupted');
    assert.equal(closedWith, 'last_durable_consumo');
    assert.equal(rejected, 'no_reading_after_restart');
    assert.equal(event.kwh, 0.09, 'the last CONSUMO (90 s), newer than the 60 s checkpoint');
    assert.equal(event.meter_import_kwh, 1000.09);
    assert.equal(event.ended_at, new Date(T0 + 90_000).toISOString(), 'ended at the last reading we know of');
    assert.equal(event.seq, 2 + 90 + 1, 'right after the last seq handed out');
    await store.settled();
    assert.deepEqual((await store.nextBatch(10)).map((entry) => entry.id), [event.id], 'its SUPPLY_END waits for Kafka');
    assert.deepEqual(await store.recoverInterrupted(), [], 'a second call finds nothing open');
    const [ledger] = await store.listSessions(1);
    assert.equal(ledger?.endReason, 'interrupted');
    assert.equal(ledger?.endedAt, event.ended_at);
    assert.deepEqual(log.lines.map((line) => line.event), ['store_opened'], 'nothing logged but the opening');
    await store.close();
  });

  it('with only the ledger checkpoint left, closes with it and says so', async () => {
    const dir = tempDir();
    await crashedSession(dir, 70, 60_000);
    rmSync(join(dir, 'charger-agent.seq')); // as if the mark had been lost
    const { store } = open(dir, new Clock(T0 + 200_000));
    const [recovered] = await store.recoverInterrupted();
    assert.equal(recovered?.closedWith, 'last_ledger_checkpoint');
    assert.equal(recovered?.event.kwh, 0.06);
    await store.close();
  });

});
