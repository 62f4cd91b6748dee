// kill -9 of the agent in the middle of an OCPP transaction, with an external Modbus meter that (like
// a real one) outlives the agent: after the restart the transaction is stopped with the register the
// meter counted up to the kill (the relay fell open with the process) and reason Reboot, once.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startAgent, stopAllAgents } from './support/agent-process.js';
import { expectOk, modbusArgs, skipWithoutSocat, startMeterSim, startSocat, tempDir } from './support/meter-rig.js';
import { assertSchemaClean, ocppArgs, startCsms, transactionMessages } from './support/ocpp-rig.js';

after(stopAllAgents);

describe('an OCPP transaction cut short by kill -9', { skip: skipWithoutSocat }, () => {
  it('is stopped after the restart with the meter register at the kill as meterStop and reason Reboot', { timeout: 150_000 }, async (t) => {
    const cleanup = (fn: () => unknown) => t.after(fn);
    const pty = await startSocat(t, tempDir(t));
    const meter = await startMeterSim(t, pty.meterPath, ['--power-w', '0']);
    const csms = await startCsms(cleanup);
    const args = [...ocppArgs(cleanup, csms, { meterValueSampleIntervalS: 1 }), ...modbusArgs(pty.agentPath)];
    const first = await startAgent({ readyTimeoutMs: 45_000, args });
    await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Available');
    assert.deepEqual(await csms.call('RemoteStartTransaction', { idTag: 'DRIVER-K9' }), { status: 'Accepted' });
    assert.equal(await first.send('SIM#PLUG'), 'ACK#SIM#PLUG');
    const start = await csms.waitFor('StartTransaction');
    await expectOk(meter, 'power 11000');
    await first.until((info) => (info.session?.kwh ?? 0) >= 0.005);
    await csms.waitFor('MeterValues', (m) => m.params.transactionId === 1);
    first.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    await expectOk(meter, 'power 0'); // the contactor dropped with the process
    const endWh = Math.round((await meter.truth()).values.importKwh * 1000);
    assert.equal(csms.received.filter((m) => m.action === 'StopTransaction').length, 0, 'no StopTransaction before the restart');

    const second = await startAgent({ readyTimeoutMs: 45_000, args, stateDir: first.stateDir });
    const stop = await csms.waitFor('StopTransaction', () => true, 30_000);
    assert.equal(stop.params.transactionId, 1);
    assert.equal(stop.params.reason, 'Reboot');
    assert.equal(stop.params.idTag, 'DRIVER-K9');
    assert.ok(Math.abs(stop.params.meterStop - endWh) <= 1, `meterStop ${stop.params.meterStop} Wh, the meter counted to ${endWh} Wh`);
    assert.ok(stop.params.meterStop > start.params.meterStart);
    const recovered = await second.waitFor('ocpp_transaction_recovered');
    assert.equal(recovered.closed_with, 'first_reading_after_restart');
    const messages = transactionMessages(csms, 1);
    assert.equal(messages.filter((m) => m.action === 'StartTransaction').length, 1, 'StartTransaction once');
    assert.equal(messages.at(-1), stop);
    const interrupted = await second.waitFor('session_interrupted');
    assert.ok(Math.abs(Number(interrupted.meter_import_kwh) * 1000 - stop.params.meterStop) <= 1, 'the ledger and OCPP close the session on the same register');
    await second.until((info) => info.state === 'Available' && info.relay.commanded === 'open');
    second.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
    assertSchemaClean(csms);
  });
});
