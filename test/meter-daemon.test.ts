// Hardware in the loop for the meter with the real daemon: `charger-agent run --hardware sim` (relay
// and inputs simulated) reads an Eastron SDM630 over Modbus RTU on one end of a socat pty pair, and
// `charger-agent meter-sim`, a separate process, answers on the other end. The test changes the
// meter while it runs through the simulator's control port and compares what the agent billed and
// when it reacted against what the simulator held (`truth`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, agentCommand, startAgent, stopAllAgents, type AgentInfo, type AgentProcess } from './support/agent-process.js';
import { expectOk, modbusArgs, skipWithoutSocat as skip, startMeterSim, startSocat, tempDir } from './support/meter-rig.js';

const exec = promisify(execFile);


/** The Done-when bounds. */
const STALE_MARGIN_MS = 200;
const BACK_TO_AVAILABLE_MS = 2000;
/** Shorter than the 10 s default so the stale test stays short; the bound is stale limit + 200 ms either way. */
const METER_STALE_MS = 3000;
/** "Meter silent 10 s into a charge". */
const CHARGE_BEFORE_SILENCE_MS = 10_000;
const KWH_DECIMALS = 3;
const LONG_OUTAGE_AFTER_FAULT_MS = 30_000;

after(stopAllAgents);

const ms = (iso: string) => Date.parse(iso);
const round = (value: number, decimals: number) => Math.round(value * 10 ** decimals) / 10 ** decimals;

async function ledger(stateDir: string): Promise<Array<Record<string, unknown>>> {
  const { stdout } = await exec(process.execPath, [...agentCommand(), 'sessions', '--json', '--state-dir', stateDir], { cwd: REPO_ROOT, timeout: 30_000 });
  return JSON.parse(stdout) as Array<Record<string, unknown>>;
}

/** Authorizes a driver and plugs in; resolves once the agent charges with the relay closed. */
async function startCharging(agent: AgentProcess, driver: string): Promise<AgentInfo> {
  assert.equal(await agent.send(`AUTORIZAR_SUMINISTRO#${driver}`), 'ACK#AUTORIZAR_SUMINISTRO');
  assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
  return agent.until((info) => info.state === 'Charging' && info.relay.feedback === 'closed', 10_000);
}

describe('the real daemon reads a simulated SDM630 over Modbus RTU on a socat pty', { skip }, () => {
  it('bills a full session with exactly the energy the meter register counted', { timeout: 90_000 }, async (t) => {
    const pair = await startSocat(t, tempDir(t));
    // No vehicle draws power until the contactor closes: the import register stands still.
    const sim = await startMeterSim(t, pair.meterPath, ['--power-w', '0', '--import-kwh', '1234.5']);
    const agent = await startAgent({ args: modbusArgs(pair.agentPath) });
    const idle = await agent.until((info) => info.meter !== null, 15_000);
    const before = await sim.truth();
    assert.equal(idle.meter!.import_kwh, before.values.importKwh, 'the agent reads the register the simulator holds');

    const charging = await startCharging(agent, 'DRIVER-HIL');
    assert.equal(charging.relay.commanded, 'closed');
    await expectOk(sim, 'power 7400');
    // Charge until at least 0.010 kWh went through (about 5 s at 7.4 kW), watching it rise.
    const charged = await agent.until((info) => info.state === 'Charging' && (info.session?.kwh ?? 0) >= 0.01, 20_000, 200);
    assert.ok(charged.meter!.power_w === 7400, `the agent sees the vehicle's power: ${JSON.stringify(charged.meter)}`);
    // The vehicle is full: it stops drawing; the agent has read the final register before the unplug.
    await expectOk(sim, 'power 0');
    const final = await sim.truth();
    await agent.until((info) => info.meter?.import_kwh === final.values.importKwh && info.meter.power_w === 0, 5000);
    assert.equal((await sim.truth()).values.importKwh, final.values.importKwh, 'the register stands still at 0 W');

    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    const ended = await agent.waitFor('session_ended', (line) => line.driver === 'DRIVER-HIL', 10_000);
    const truthKwh = final.values.importKwh - before.values.importKwh;
    t.diagnostic(`register ${before.values.importKwh} → ${final.values.importKwh} kWh: truth ${truthKwh.toFixed(6)} kWh; session_ended kwh ${ended.kwh}`);
    console.log(`kWh vs truth: agent ${ended.kwh} kWh, simulator register delta ${truthKwh.toFixed(6)} kWh, difference ${(Number(ended.kwh) - truthKwh).toFixed(6)}`);
    assert.equal(ended.reason, 'unplugged');
    assert.ok(truthKwh >= 0.01, `energy went through: ${truthKwh}`);
    assert.equal(ended.kwh, round(truthKwh, KWH_DECIMALS), 'session kWh = register delta rounded to 0.001');
    assert.ok(Math.abs(Number(ended.kwh) - truthKwh) <= 0.0005 + 1e-9);

    const idleAgain = await agent.until((info) => info.state === 'Available', 5000);
    assert.equal(idleAgain.relay.commanded, 'open');
    const [session, ...older] = await ledger(agent.stateDir);
    assert.equal(older.length, 0);
    assert.equal(session!.session_id, ended.session);
    assert.equal(session!.reason, 'unplugged');
    assert.equal(session!.kwh, ended.kwh, 'the ledger bills what SUPPLY_END said');
    assert.equal(session!.end_import_kwh, final.values.importKwh, 'the ledger keeps the register the meter ended on');
    assert.ok(Math.abs(Number(session!.start_import_kwh) - before.values.importKwh) <= 0.001, `ledger start ${session!.start_import_kwh} vs ${before.values.importKwh}`);
    assert.equal(session!.open, false);
  });

  it('SUPPLY_END bills the register the meter served after the relay opened, not the last reading before it', { timeout: 90_000 }, async (t) => {
    const pair = await startSocat(t, tempDir(t));
    // The vehicle keeps drawing 7.4 kW: the register moves about 2 Wh between two polls, so a reading
    // from before the opening and one from after it differ.
    const sim = await startMeterSim(t, pair.meterPath, ['--power-w', '7400']);
    const agent = await startAgent({ args: modbusArgs(pair.agentPath) });
    await agent.until((info) => info.meter !== null, 15_000);
    await startCharging(agent, 'DRIVER-FINAL');
    await agent.until((info) => (info.session?.kwh ?? 0) >= 0.004, 20_000, 200);

    const unplugSentMs = Date.now();
    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG'); // the ACK comes after the relay was commanded open
    const openCommandedByMs = Date.now();
    const ended = await agent.waitFor('session_ended', (line) => line.driver === 'DRIVER-FINAL', 10_000);
    const truth = await sim.truth();
    const importAnswers = truth.served.filter((s) => s.intact && s.request.address <= 0x48 && s.request.address + s.request.count >= 0x4a);
    const before = importAnswers.filter((s) => s.atMs < unplugSentMs).map((s) => s.values.importKwh);
    const after = importAnswers.filter((s) => s.atMs > openCommandedByMs).map((s) => s.values.importKwh);
    const lastBefore = Math.max(...before);
    t.diagnostic(`SUPPLY_END register ${ended.meter_import_kwh} kWh (${ended.final_reading}); last register served before the unplug ${lastBefore} kWh: ${((Number(ended.meter_import_kwh) - lastBefore) * 1000).toFixed(2)} Wh more billed`);
    assert.equal(ended.final_reading, 'after_open');
    assert.ok(after.includes(Number(ended.meter_import_kwh)), `SUPPLY_END's register ${ended.meter_import_kwh} is one the meter served after the relay opened: ${after.join(', ')}`);
    assert.ok(Number(ended.meter_import_kwh) > lastBefore, 'more than the last register before the opening');
    const [session] = await ledger(agent.stateDir);
    assert.equal(session!.end_import_kwh, ended.meter_import_kwh, 'the ledger keeps the same final register');
  });

  it(`a meter silent ${CHARGE_BEFORE_SILENCE_MS / 1000} s into a charge faults and opens the relay within the stale limit + 200 ms; back, the point is Available within 2 s`, { timeout: 90_000 }, async (t) => {
    const pair = await startSocat(t, tempDir(t));
    const sim = await startMeterSim(t, pair.meterPath, ['--power-w', '7400']);
    const agent = await startAgent({ args: modbusArgs(pair.agentPath, ['--meter-stale-ms', String(METER_STALE_MS)]) });
    await agent.until((info) => info.meter !== null, 15_000);
    const charging = await startCharging(agent, 'DRIVER-STALE');
    const chargingSinceMs = ms(charging.session!.started_at!);

    // Charge for 10 s; every INFO on the way must show a charge with fresh readings.
    let during = charging;
    while (Date.now() - chargingSinceMs < CHARGE_BEFORE_SILENCE_MS) {
      during = await agent.info();
      assert.equal(during.state, 'Charging', `still charging ${Date.now() - chargingSinceMs} ms in: ${JSON.stringify(during)}`);
      assert.ok(Date.now() - ms(during.meter!.taken_at) < METER_STALE_MS, 'readings stay fresh');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.ok(during.session!.kwh > 0, 'energy was counted before the silence');

    const silenceSentMs = Date.now();
    await expectOk(sim, 'silent on');
    const raised = await agent.waitFor('fault_raised', (line) => line.fault === 'meter_stale', METER_STALE_MS + 5000);
    const faulted = await agent.info();
    const fault = faulted.faults.find((f) => f.code === 'meter_stale') as { code: string; since: string } | undefined;
    assert.ok(fault, `INFO lists meter_stale: ${JSON.stringify(faulted.faults)}`);
    const lastGoodMs = ms(faulted.meter!.taken_at);
    const latencyMs = ms(fault.since) - lastGoodMs;
    const truth = await sim.truth();
    const lastIntactMs = Math.max(...truth.served.filter((answer) => answer.intact).map((answer) => answer.atMs));
    const message = `stale detection: last good reading ${faulted.meter!.taken_at}, fault since ${fault.since}: ${latencyMs} ms (limit ${METER_STALE_MS} + ${STALE_MARGIN_MS} ms); last intact answer served ${ms(fault.since) - lastIntactMs} ms before the fault, silence sent ${ms(fault.since) - silenceSentMs} ms before`;
    t.diagnostic(message);
    console.log(message);
    assert.ok(latencyMs >= METER_STALE_MS, `not before the stale limit: ${latencyMs} ms`);
    assert.ok(latencyMs <= METER_STALE_MS + STALE_MARGIN_MS, message);
    assert.ok(lastIntactMs <= lastGoodMs, 'the last good reading is one the meter served before it went silent');

    // The relay was commanded open in the same step that raised the fault, before it was reported.
    assert.equal(faulted.state, 'Faulted');
    assert.equal(faulted.relay.commanded, 'open');
    const raisedAt = agent.lines.indexOf(raised);
    const lastRelayCommand = agent.lines.slice(0, raisedAt).findLast((line) => line.event === 'relay_command');
    assert.equal(lastRelayCommand?.relay, 'open', 'relay_command open precedes fault_raised');
    const ended = await agent.waitFor('session_ended', (line) => line.driver === 'DRIVER-STALE', 5000);
    assert.equal(ended.reason, 'fault');
    assert.equal((await agent.info()).session, null, 'the session is over once session_ended is logged (its SUPPLY_END waits for a reading after the relay opened)');
    assert.equal(await agent.send('STATUS?'), 'KO');
    await agent.until((info) => info.relay.feedback === 'open', 2000);

    // While silent, the last good reading is never passed on as a fresh one.
    const stillSilent = await agent.info();
    assert.equal(stillSilent.meter!.taken_at, faulted.meter!.taken_at, 'no reading is invented while the meter is silent');
    assert.equal(stillSilent.state, 'Faulted');

    const backSentMs = Date.now();
    await expectOk(sim, 'silent off');
    await agent.waitFor('fault_cleared', (line) => line.fault === 'meter_stale', BACK_TO_AVAILABLE_MS + 3000);
    const clearedMs = Date.now();
    const available = await agent.info();
    const firstFreshMs = ms(available.meter!.taken_at);
    const recovery = `meter back: first fresh reading ${firstFreshMs - backSentMs} ms after "silent off", fault_cleared seen ${clearedMs - backSentMs} ms after`;
    t.diagnostic(recovery);
    console.log(recovery);
    assert.equal(available.state, 'Available', 'the session does not resume on its own');
    assert.equal(available.session, null);
    assert.equal(available.plugged, true);
    assert.equal(available.relay.commanded, 'open');
    assert.ok(clearedMs - backSentMs <= BACK_TO_AVAILABLE_MS, recovery);
    assert.equal(await agent.send('STATUS?'), 'OK');
  });

  it('a meter that stays silent 30 s past the fault is still seen back within 2 s', { timeout: 150_000 }, async (t) => {
    const pair = await startSocat(t, tempDir(t));
    const sim = await startMeterSim(t, pair.meterPath, ['--power-w', '7400']);
    const agent = await startAgent({ args: modbusArgs(pair.agentPath, ['--meter-stale-ms', String(METER_STALE_MS)]) });
    await agent.until((info) => info.meter !== null, 15_000);
    await startCharging(agent, 'DRIVER-OUTAGE');
    await expectOk(sim, 'silent on');
    await agent.waitFor('fault_raised', (line) => line.fault === 'meter_stale', METER_STALE_MS + 5000);
    // A longer outage: the meter's bus is out for a while, as when a technician swaps the meter.
    await new Promise((resolve) => setTimeout(resolve, LONG_OUTAGE_AFTER_FAULT_MS));
    assert.equal((await agent.info()).state, 'Faulted');

    const backSentMs = Date.now();
    await expectOk(sim, 'silent off');
    const cleared = await agent.waitFor('fault_cleared', (line) => line.fault === 'meter_stale', 60_000).then(() => Date.now());
    const message = `meter back after a ${LONG_OUTAGE_AFTER_FAULT_MS / 1000} s outage past the fault: fault_cleared ${cleared - backSentMs} ms after "silent off"`;
    t.diagnostic(message);
    console.log(message);
    assert.ok(cleared - backSentMs <= BACK_TO_AVAILABLE_MS, message);
    assert.equal((await agent.info()).state, 'Available');
  });

  it('starts with no meter port, answers STATUS?, logs meter_down once, and connects once the pty appears', { timeout: 90_000 }, async (t) => {
    const dir = tempDir(t);
    const agentPath = join(dir, 'agent');
    const agent = await startAgent({ args: modbusArgs(agentPath) });
    const down = await agent.waitFor('meter_down', () => true, 5000);
    assert.equal(down.code, 'METER_PORT_MISSING');
    assert.equal(await agent.send('STATUS?'), 'OK', 'a missing meter while idle is not a fault');
    const waiting = await agent.info();
    assert.equal(waiting.state, 'Available');
    assert.equal(waiting.meter, null);
    // Let the worker fail a few more times (its backoff starts at 1 s) before the port exists.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await agent.send('STATUS?'), 'OK');

    const pair = await startSocat(t, dir);
    assert.equal(pair.agentPath, agentPath);
    await startMeterSim(t, pair.meterPath, ['--power-w', '7400']);
    const simReadyMs = Date.now();
    const up = await agent.waitFor('meter_up', () => true, 70_000);
    const connectedMs = Date.now();
    const connected = await agent.until((info) => info.meter !== null, 5000);
    const message = `first connection failing: meter_up ${connectedMs - simReadyMs} ms after the simulator answered (down_ms ${up.down_ms}, failures ${up.failures})`;
    t.diagnostic(message);
    console.log(message);
    assert.equal(agent.lines.filter((line) => line.event === 'meter_down').length, 1, 'the outage was logged once');
    assert.equal(connected.meter!.power_w, 7400);

    const charging = await startCharging(agent, 'DRIVER-LATE');
    assert.equal(charging.relay.commanded, 'closed');
    await agent.until((info) => (info.session?.kwh ?? 0) > 0, 10_000);
    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    const ended = await agent.waitFor('session_ended', (line) => line.driver === 'DRIVER-LATE', 5000);
    assert.equal(ended.reason, 'unplugged');
    assert.ok(Number(ended.kwh) > 0);
  });
});
