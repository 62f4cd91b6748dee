// kill -9 of the agent mid-session, then a restart on the same state directory, with a real Kafka
// and an external Modbus meter that, like a real one, outlives the agent: the session is closed as
// interrupted with the energy the meter counted, the relay stays open, and nothing that was durable
// before the kill is lost.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startAgent, stopAllAgents, type AgentProcess } from './support/agent-process.js';
import { expectOk, modbusArgs, skipWithoutSocat, startMeterSim, startSocat, tempDir } from './support/meter-rig.js';
import { readTopic, watchTopic } from './support/kafka-topic.js';
import { requireBrokers } from './support/services.js';

after(stopAllAgents);

describe('a crash mid-session (kill -9)', { skip: skipWithoutSocat }, () => {
  it('is closed as interrupted at restart with the energy the meter counted, the relay open and no durable event lost', { timeout: 120_000 }, async (t) => {
    const { kafkaBrokers } = requireBrokers();
    const pty = await startSocat(t, tempDir(t));
    const meter = await startMeterSim(t, pty.meterPath, ['--power-w', '0']);
    const topic = `crash-${randomUUID().slice(0, 8)}`;
    const cpId = `CP-CRASH-${randomUUID().slice(0, 6)}`;
    const stateDir = mkdtempSync(join(tmpdir(), 'charger-crash-'));
    const args = ['--kafka-brokers', kafkaBrokers.join(','), '--kafka-topic', topic, '--cp-id', cpId, ...modbusArgs(pty.agentPath)];
    try {
      const first: AgentProcess = await startAgent({ stateDir, args });
      await first.waitFor('store_opened', () => true, 60_000); // what a crash before this would lose is not the point here
      assert.equal(await first.send('AUTORIZAR_SUMINISTRO#DRIVER-9'), 'ACK#AUTORIZAR_SUMINISTRO');
      await first.send('SIM#PLUG');
      await first.until((info) => info.state === 'Charging');
      const startKwh = (await meter.truth()).values.importKwh;
      await expectOk(meter, 'power 11000');
      const charging = await first.until((info) => (info.session?.kwh ?? 0) >= 0.005);
      const sessionId = charging.session!.id;
      // Kill the moment a CONSUMO reaches Kafka: the next one is a second away, so nothing is in flight
      // and that CONSUMO's seq is the last one the first run handed out.
      let lastSeqBeforeKill = 0;
      const watch = watchTopic(kafkaBrokers, topic, (message) => {
        if (lastSeqBeforeKill === 0 && message.type === 'CONSUMO' && (message.kwh ?? 0) >= 0.005) {
          first.kill('SIGKILL');
          lastSeqBeforeKill = message.seq;
        }
      });
      await watch.ready;
      assert.equal((await first.exited).signal, 'SIGKILL');
      await watch.stop();
      const beforeKill = watch.messages;
      // the contactor drops with the process: the vehicle draws nothing more until the restart
      await expectOk(meter, 'power 0');
      const endKwh = (await meter.truth()).values.importKwh;

      const second = await startAgent({ stateDir, args });
      const interrupted = await second.waitFor('session_interrupted');
      assert.equal(interrupted.session, sessionId);
      assert.equal(interrupted.closed_with, 'first_reading_after_restart');
      const meteredKwh = Math.round((endKwh - startKwh) * 1000) / 1000;
      assert.ok(Math.abs(Number(interrupted.kwh) - meteredKwh) <= 0.0015, `billed ${interrupted.kwh} kWh, the meter counted ${meteredKwh} kWh`);
      const info = await second.info();
      assert.equal(info.relay.commanded, 'open');
      assert.equal(info.session, null);
      assert.equal(info.state, 'Available');

      const messages = await readTopic(kafkaBrokers, topic, (all) => all.some((m) => m.type === 'SUPPLY_END' && m.session_id === sessionId));
      const started = messages.filter((m) => m.type === 'SESSION_STARTED' && m.session_id === sessionId);
      const ended = messages.filter((m) => m.type === 'SUPPLY_END' && m.session_id === sessionId);
      assert.equal(started.length >= 1, true, 'SESSION_STARTED survived the crash');
      assert.equal(new Set(ended.map((m) => m.id)).size, 1, 'one SUPPLY_END (duplicates only as resends with the same id)');
      assert.equal(ended[0]!.reason, 'interrupted');
      assert.equal(ended[0]!.kwh, interrupted.kwh);
      // seq is monotonic per charge point across the crash; a resend repeats its seq and id together
      const bySeq = new Map<number, string>();
      for (const m of messages) {
        const seen = bySeq.get(m.seq);
        assert.ok(seen === undefined || seen === m.id, `seq ${m.seq} carries one id`);
        bySeq.set(m.seq, m.id);
      }
      const seqs = [...bySeq.keys()];
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'delivered in seq order');
      assert.deepEqual(seqs, seqs.map((_, index) => index + 1), 'seq 1, 2, 3 … without a gap across the kill -9');
      // the watcher may have read a later message in the same fetch as the one that triggered the kill
      const lastSeenBeforeKill = Math.max(lastSeqBeforeKill, ...beforeKill.map((m) => m.seq));
      const firstAfterRestart = Math.min(...messages.filter((m) => !beforeKill.some((b) => b.id === m.id)).map((m) => m.seq));
      assert.equal(firstAfterRestart, lastSeenBeforeKill + 1, 'the restarted agent goes on right after the last seq on the topic');
      const statusAfterRestart = messages.filter((m) => m.type === 'CP_STATUS');
      assert.ok(statusAfterRestart.length >= 2, 'the state changes before the kill were delivered');
      second.kill('SIGTERM');
      assert.equal((await second.exited).code, 0);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
