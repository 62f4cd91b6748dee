// The CSMS goes away for 30 s in the middle of a transaction: the transaction ends while it is down,
// and a second one starts and ends offline. On reconnect every transaction message arrives, in the
// order it was queued, none lost and none twice; the offline transaction gets its id from the answer
// to its StartTransaction, and its MeterValues and StopTransaction carry it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent, stopAllAgents } from './support/agent-process.js';
import { assertSchemaClean, journaledMessages, messageKey, ocppArgs, startCsms, transactionMessages } from './support/ocpp-rig.js';

after(stopAllAgents);

const OUTAGE_MS = 30_000;
const SAMPLE_S = 2;
const TRANSACTION_ACTIONS = new Set(['StartTransaction', 'MeterValues', 'StopTransaction']);

describe('OCPP while the CSMS is unreachable', () => {
  it('delivers every message of a transaction that ended during a 30 s outage, and of one run entirely offline, in order, 0 lost, 0 duplicated', { timeout: 180_000 }, async (t) => {
    const cleanup = (fn: () => unknown) => t.after(fn);
    const csms = await startCsms(cleanup);
    const agent = await startAgent({ readyTimeoutMs: 45_000, args: ocppArgs(cleanup, csms, { meterValueSampleIntervalS: SAMPLE_S, reconnectMaxS: 2 }) });
    await csms.waitFor('StatusNotification', (m) => m.params.connectorId === 1 && m.params.status === 'Available');

    assert.deepEqual(await csms.call('RemoteStartTransaction', { idTag: 'DRIVER-ON' }), { status: 'Accepted' });
    assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
    await csms.waitFor('StartTransaction');
    await csms.waitFor('MeterValues', () => csms.received.filter((m) => m.action === 'MeterValues').length >= 2, 15_000);

    await csms.close(true); // stopped: it answers what it already received, then goes away
    const downAtMs = Date.now();
    await agent.waitFor('ocpp_down');
    const charged = (await agent.info()).session!.kwh;
    await agent.until((info) => (info.session?.kwh ?? 0) >= charged + 0.012, 20_000); // a few samples queue up offline
    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    await agent.until((info) => info.session === null);

    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#DRIVER-OFF'), 'ACK#AUTORIZAR_SUMINISTRO');
    assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
    await agent.until((info) => (info.session?.kwh ?? 0) >= 0.008, 20_000);
    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    await agent.until((info) => info.session === null);
    assert.ok(Date.now() - downAtMs < OUTAGE_MS, 'both transactions ended while the CSMS was down');

    await sleep(OUTAGE_MS - (Date.now() - downAtMs)); // the outage lasts 30 s, as the issue sets
    await csms.listen();
    const backAtMs = Date.now();
    const secondStop = await csms.waitFor('StopTransaction', (m) => m.params.idTag === 'DRIVER-OFF', 60_000);

    const received = csms.received.filter((m) => TRANSACTION_ACTIONS.has(m.action)).map((m) => messageKey(m.action, m.params));
    const queued = journaledMessages(agent.stateDir);
    assert.deepEqual(received, queued, 'every queued transaction message arrived once, in the order it was queued');
    assert.equal(new Set(received).size, received.length, 'no message twice');

    const first = transactionMessages(csms, 1);
    const second = transactionMessages(csms, 2);
    assert.deepEqual([first[0]!.action, first.at(-1)!.action], ['StartTransaction', 'StopTransaction']);
    assert.equal(first.at(-1)!.params.reason, 'EVDisconnected');
    const times = first.filter((m) => m.action === 'MeterValues').map((m) => Date.parse(m.params.meterValue[0].timestamp));
    const gaps = times.slice(1).map((time, i) => time - times[i]!);
    assert.ok(gaps.every((gap) => gap > 0 && gap <= SAMPLE_S * 1000 + 1500), `a sample every ${SAMPLE_S} s through the outage, none missing: gaps ${gaps.join(',')}`);
    assert.ok(times.filter((time) => time > downAtMs).length >= 3, 'samples taken during the outage were delivered');

    assert.equal(second[0]!.action, 'StartTransaction');
    assert.equal(second[0]!.params.idTag, 'DRIVER-OFF');
    assert.ok(Date.parse(second[0]!.params.timestamp) < downAtMs + OUTAGE_MS, 'started while the CSMS was down');
    assert.equal(second.at(-1), secondStop, 'the offline transaction ends with its StopTransaction, carrying the id its StartTransaction got');
    assert.ok(second.filter((m) => m.action === 'MeterValues').length >= 1);
    assert.equal(secondStop.params.meterStop - second[0]!.params.meterStart >= 8, true, 'the offline energy is reported');
    assertSchemaClean(csms);
    const backlog = csms.received.filter((m) => TRANSACTION_ACTIONS.has(m.action) && m.atMs >= backAtMs).length;
    t.diagnostic(`outage ${OUTAGE_MS} ms: ${backlog} transaction messages delivered ${secondStop.atMs - backAtMs} ms after the CSMS came back; ${received.length} in all, 0 lost, 0 duplicated`);
  });
});
