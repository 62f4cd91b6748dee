// The agent as an OCPP 1.6J charge point against a real CSMS on loopback (ocpp-rpc's server in strict
// mode, validating every message both ways against the official schemas): boot, heartbeat, remote
// start → charge → remote stop with MeterValues, a local Authorize, a fault, ChangeAvailability, the
// configuration keys, and Reset.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DevCsms } from '../agent/ocpp/dev-csms.js';
import { startAgent, stopAllAgents, type AgentProcess } from './support/agent-process.js';
import { assertSchemaClean, energyOf, ocppArgs, startCsms, transactionMessages } from './support/ocpp-rig.js';

after(stopAllAgents);

const wh = (kwh: number) => Math.round(kwh * 1000);

async function chargingWith(agent: AgentProcess): Promise<void> {
  assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
  await agent.until((info) => info.state === 'Charging');
}

describe('the agent as an OCPP 1.6J charge point', () => {
  it('boots (again after Pending), sends heartbeats at the interval the CSMS gave and reports its status', { timeout: 60_000 }, async (t) => {
    const csms = await startCsms((fn) => t.after(fn), (c) => {
      c.bootStatus = 'Pending';
      c.bootIntervalS = 1;
    });
    await startAgent({ readyTimeoutMs: 45_000, args: ocppArgs((fn) => t.after(fn), csms, { chargePointId: 'CP-OCPP-BOOT' }) });
    const first = await csms.waitFor('BootNotification');
    assert.equal(first.identity, 'CP-OCPP-BOOT');
    assert.equal(first.params.chargePointVendor, 'charger-agent');
    csms.bootStatus = 'Accepted';
    const bootCount = csms.received.length;
    await csms.waitFor('BootNotification', () => true, 10_000, bootCount);
    const statusAt = csms.received.length;
    const zero = await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 0, 10_000, statusAt);
    const one = await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1, 10_000, statusAt);
    assert.equal(zero.params.status, 'Available');
    assert.equal(one.params.status, 'Available');
    const beats = csms.received.length;
    const firstBeat = await csms.waitFor('Heartbeat', () => true, 10_000, beats);
    const secondBeat = await csms.waitFor('Heartbeat', (m) => m !== firstBeat, 10_000, beats);
    assert.ok(secondBeat.atMs - firstBeat.atMs >= 800, 'heartbeats follow the 1 s interval of the BootNotification answer');
    assert.equal(csms.received.filter((m) => m.action === 'Heartbeat' && m.atMs < firstBeat.atMs).length, 0);
    assert.equal(csms.received.slice(0, csms.received.indexOf(zero)).filter((m) => m.action !== 'BootNotification').length, 0, 'nothing but BootNotification while Pending');
    assertSchemaClean(csms);
  });

  describe('with one agent and one CSMS', () => {
    let agent: AgentProcess;
    let csms: DevCsms;
    const cleanups: Array<() => unknown> = [];
    after(async () => {
      await agent?.stop();
      for (const fn of cleanups.reverse()) await fn();
    });

    before(async () => {
      csms = await startCsms((fn) => cleanups.push(fn));
      agent = await startAgent({ readyTimeoutMs: 45_000, args: ocppArgs((fn) => cleanups.push(fn), csms, { meterValueSampleIntervalS: 1, localAuthList: ['LOCAL-TAG'] }) });
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Available');
    });

    it('runs a remote start → charge → remote stop transaction whose MeterValues carry the register rise', { timeout: 90_000 }, async () => {
      const before = await agent.info();
      assert.deepEqual(await csms.call('RemoteStartTransaction', { connectorId: 1, idTag: 'DRIVER-OCPP' }), { status: 'Accepted' });
      const authorized = await agent.info();
      assert.equal(authorized.session?.driver, 'DRIVER-OCPP', 'one session on the core, the same the TCP protocol sees');
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Preparing');
      await chargingWith(agent);
      const start = await csms.waitFor('StartTransaction');
      assert.equal(start.params.idTag, 'DRIVER-OCPP');
      assert.equal(start.params.meterStart, wh(before.meter!.import_kwh), 'meterStart is the import register in Wh');
      await csms.waitFor('StatusNotification', (m) => m.params.status === 'Charging');
      const samplesFrom = csms.received.length;
      await csms.waitFor('MeterValues', () => csms.received.slice(samplesFrom).filter((m) => m.action === 'MeterValues').length >= 3, 20_000, samplesFrom);
      // the vehicle pauses: SuspendedEV, then Charging again once it draws
      assert.equal(await agent.send('SIM#POWER#0'), 'ACK#SIM#POWER#0');
      const suspended = await csms.waitFor('StatusNotification', (m) => m.params.status === 'SuspendedEV', 15_000);
      assert.equal(await agent.send('SIM#POWER#7400'), 'ACK#SIM#POWER#7400');
      await csms.waitFor('StatusNotification', (m) => m.params.status === 'Charging' && m.atMs > suspended.atMs, 15_000);
      const transactionId = csms.lastTransactionId!;
      assert.deepEqual(await csms.call('RemoteStopTransaction', { transactionId: transactionId + 100 }), { status: 'Rejected' });
      assert.deepEqual(await csms.call('RemoteStopTransaction', { transactionId }), { status: 'Accepted' }); // under load
      const stop = await csms.waitFor('StopTransaction');
      const after = await agent.until((info) => info.session === null);
      assert.equal(after.in_service, true, 'a remote stop ends the transaction, not the service');
      assert.equal(stop.params.transactionId, transactionId);
      assert.equal(stop.params.reason, 'Remote');
      assert.equal(stop.params.meterStop, wh(after.meter!.import_kwh), 'meterStop is the register once the contactor opened');
      const rise = wh(after.meter!.import_kwh) - wh(before.meter!.import_kwh);
      assert.ok(rise > 0, 'energy flowed');
      const messages = transactionMessages(csms, transactionId);
      const energies = messages.filter((m) => m.action === 'MeterValues').flatMap(energyOf);
      assert.ok(energies.length >= 3);
      assert.deepEqual(energies, [...energies].sort((a, b) => a - b), 'the register never runs backwards');
      assert.ok(energies.at(-1)! <= stop.params.meterStop && energies[0]! >= start.params.meterStart, 'every sample lies within the transaction');
      assert.equal(stop.params.meterStop - start.params.meterStart, rise, 'the transaction energy equals the meter register rise');
      const [begin, end] = energyOf(stop);
      assert.equal(end! - begin!, rise, 'transactionData (Transaction.Begin, Transaction.End) carries the register rise');
      assert.equal(messages.at(-1), stop, 'nothing of the transaction after its StopTransaction');
      const sample = messages.find((m) => m.action === 'MeterValues')!.params.meterValue[0].sampledValue as Array<{ measurand: string; phase?: string; unit: string }>;
      assert.deepEqual(new Set(sample.map((s) => s.measurand)), new Set(['Energy.Active.Import.Register', 'Power.Active.Import', 'Voltage', 'Current.Import']));
      assert.equal(sample.filter((s) => s.measurand === 'Current.Import').length, 3, 'current per phase');
      await csms.waitFor('StatusNotification', (m) => m.params.status === 'Finishing' && m.atMs >= suspended.atMs);
      assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
      await csms.waitFor('StatusNotification', (m) => m.params.status === 'Available' && m.atMs > stop.atMs);
      assertSchemaClean(csms);
    });

    it('asks the CSMS to Authorize a driver the original central system authorized, and skips it for the local list', { timeout: 60_000 }, async () => {
      const from = csms.received.length;
      assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#DRIVER-TCP'), 'ACK#AUTORIZAR_SUMINISTRO');
      const authorize = await csms.waitFor('Authorize', () => true, 10_000, from);
      assert.equal(authorize.params.idTag, 'DRIVER-TCP');
      await chargingWith(agent);
      const start = await csms.waitFor('StartTransaction', () => true, 10_000, from);
      assert.equal(start.params.idTag, 'DRIVER-TCP');
      assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
      const stop = await csms.waitFor('StopTransaction', () => true, 10_000, from);
      assert.equal(stop.params.reason, 'EVDisconnected');

      const local = csms.received.length;
      assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#LOCAL-TAG'), 'ACK#AUTORIZAR_SUMINISTRO');
      await chargingWith(agent);
      const localStart = await csms.waitFor('StartTransaction', () => true, 10_000, local);
      assert.equal(localStart.params.idTag, 'LOCAL-TAG');
      assert.equal(csms.received.slice(local).filter((m) => m.action === 'Authorize').length, 0, 'an idTag of the local list is authorized locally');
      assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
      await csms.waitFor('StopTransaction', () => true, 10_000, local);

      csms.blockedIdTags.add('DRIVER-BLOCKED');
      const blocked = csms.received.length;
      assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#DRIVER-BLOCKED'), 'ACK#AUTORIZAR_SUMINISTRO');
      await csms.waitFor('Authorize', (m) => m.params.idTag === 'DRIVER-BLOCKED', 10_000, blocked);
      await agent.until((info) => info.session === null && info.in_service);
      assert.equal(csms.received.slice(blocked).filter((m) => m.action === 'StartTransaction').length, 0, 'an idTag the CSMS blocks does not charge');
      assertSchemaClean(csms);
    });

    it('reports a fault as Faulted with its error code, ends the transaction, and Available once it clears', { timeout: 60_000 }, async () => {
      const from = csms.received.length;
      await csms.call('RemoteStartTransaction', { idTag: 'DRIVER-F' });
      await chargingWith(agent);
      await csms.waitFor('StartTransaction', () => true, 10_000, from);
      assert.equal(await agent.send('SIM#FAULT'), 'ACK#SIM#FAULT');
      const faulted = await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Faulted', 10_000, from);
      assert.equal(faulted.params.errorCode, 'OtherError');
      assert.equal(faulted.params.vendorErrorCode, 'hardware_fault');
      const stop = await csms.waitFor('StopTransaction', () => true, 10_000, from);
      assert.equal(stop.params.reason, 'Other');
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 0 && m.params.status === 'Faulted', 10_000, from);
      assert.equal(await agent.send('SIM#RECOVER'), 'ACK#SIM#RECOVER');
      assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Available' && m.atMs > faulted.atMs, 10_000, from);
      assertSchemaClean(csms);
    });

    it('takes the charge point out of service and back with ChangeAvailability, scheduled while a transaction runs', { timeout: 60_000 }, async () => {
      let from = csms.received.length;
      assert.deepEqual(await csms.call('ChangeAvailability', { connectorId: 0, type: 'Inoperative' }), { status: 'Accepted' });
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Unavailable', 10_000, from);
      assert.equal((await agent.info()).in_service, false);
      assert.deepEqual(await csms.call('RemoteStartTransaction', { idTag: 'DRIVER-X' }), { status: 'Rejected' });
      assert.deepEqual(await csms.call('ChangeAvailability', { connectorId: 1, type: 'Operative' }), { status: 'Accepted' });
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Available', 10_000, from);
      assert.deepEqual(await csms.call('ChangeAvailability', { connectorId: 2, type: 'Inoperative' }), { status: 'Rejected' });

      from = csms.received.length;
      await csms.call('RemoteStartTransaction', { idTag: 'DRIVER-S' });
      await chargingWith(agent);
      await csms.waitFor('StartTransaction', () => true, 10_000, from);
      assert.deepEqual(await csms.call('ChangeAvailability', { connectorId: 0, type: 'Inoperative' }), { status: 'Scheduled' });
      assert.equal((await agent.info()).state, 'Charging', 'the running transaction goes on');
      assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
      await csms.waitFor('StopTransaction', () => true, 10_000, from);
      await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Unavailable', 10_000, from);
      await csms.call('ChangeAvailability', { connectorId: 0, type: 'Operative' });
      await agent.until((info) => info.in_service);
      assertSchemaClean(csms);
    });

    it('answers GetConfiguration, ChangeConfiguration (clock-aligned MeterValues follow at once), TriggerMessage, UnlockConnector and DataTransfer', { timeout: 30_000 }, async () => {
      const config = await csms.call('GetConfiguration', { key: ['MeterValueSampleInterval', 'NoSuchKey'] });
      assert.deepEqual(config, { configurationKey: [{ key: 'MeterValueSampleInterval', readonly: false, value: '1' }], unknownKey: ['NoSuchKey'] });
      assert.deepEqual(await csms.call('ChangeConfiguration', { key: 'MeterValueSampleInterval', value: '30' }), { status: 'Accepted' });
      assert.deepEqual(await csms.call('ChangeConfiguration', { key: 'NumberOfConnectors', value: '2' }), { status: 'Rejected' });
      assert.deepEqual(await csms.call('ChangeConfiguration', { key: 'NoSuchKey', value: '2' }), { status: 'NotSupported' });
      const all = await csms.call('GetConfiguration', {});
      assert.ok(all.configurationKey.some((k: { key: string; value: string }) => k.key === 'MeterValueSampleInterval' && k.value === '30'));
      const from = csms.received.length;
      assert.deepEqual(await csms.call('TriggerMessage', { requestedMessage: 'StatusNotification' }), { status: 'Accepted' });
      await csms.waitFor('StatusNotification', () => true, 10_000, from);
      assert.deepEqual(await csms.call('TriggerMessage', { requestedMessage: 'MeterValues', connectorId: 1 }), { status: 'Accepted' });
      const triggered = await csms.waitFor('MeterValues', () => true, 10_000, from);
      assert.equal(triggered.params.meterValue[0].sampledValue[0].context, 'Trigger');
      assert.deepEqual(await csms.call('TriggerMessage', { requestedMessage: 'DiagnosticsStatusNotification' }), { status: 'NotImplemented' });
      const aligned = csms.received.length;
      assert.deepEqual(await csms.call('ChangeConfiguration', { key: 'ClockAlignedDataInterval', value: '2' }), { status: 'Accepted' });
      const clock = await csms.waitFor('MeterValues', (m) => m.params.meterValue[0].sampledValue[0].context === 'Sample.Clock', 10_000, aligned);
      assert.equal(Date.parse(clock.params.meterValue[0].timestamp) % 2000 < 1500, true, 'taken by the first reading of a 2 s slot from midnight UTC');
      assert.deepEqual(await csms.call('ChangeConfiguration', { key: 'ClockAlignedDataInterval', value: '0' }), { status: 'Accepted' });
      assert.deepEqual(await csms.call('UnlockConnector', { connectorId: 1 }), { status: 'NotSupported' });
      assert.deepEqual(await csms.call('DataTransfer', { vendorId: 'acme' }), { status: 'Rejected' });
      await assert.rejects(csms.call('GetDiagnostics', { location: 'ftp://x/' }), /NotImplemented|not implemented/i);
      assertSchemaClean(csms);
    });
  });

  for (const [type, exitCode, reason] of [['Soft', 75, 'SoftReset'], ['Hard', 1, 'HardReset']] as const) {
    it(`${type} Reset ends the transaction (${reason}) and the process exits ${exitCode} for systemd to restart it`, { timeout: 60_000 }, async (t) => {
      const csms = await startCsms((fn) => t.after(fn));
      const args = ocppArgs((fn) => t.after(fn), csms);
      const agent = await startAgent({ readyTimeoutMs: 45_000, args });
      await csms.waitFor('StatusNotification');
      assert.deepEqual(await csms.call('RemoteStartTransaction', { idTag: 'DRIVER-R' }), { status: 'Accepted' });
      await chargingWith(agent);
      await csms.waitFor('StartTransaction');
      assert.deepEqual(await csms.call('Reset', { type }), { status: 'Accepted' });
      const exited = await agent.exited;
      assert.equal(exited.code, exitCode);
      if (type === 'Hard') {
        // a hard reset waits at most a second for the CSMS: what it did not answer by then goes after the restart, once
        await startAgent({ readyTimeoutMs: 45_000, args, stateDir: agent.stateDir });
      }
      const stop = await csms.waitFor('StopTransaction');
      assert.equal(stop.params.reason, reason);
      assert.equal(csms.received.filter((m) => m.action === 'StopTransaction').length, 1);
      assertSchemaClean(csms);
    });
  }
});
