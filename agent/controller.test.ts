import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createSimHardware, type SimHardware } from '../drivers/sim/sim-hardware.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { Agent } from './controller.js';
import { createLogger, type Logger } from './logging/logger.js';
import { createTelemetryPipeline, type LedgerTelemetryPipeline } from './telemetry/pipeline.js';
import type { InterruptedSession } from './telemetry/store/types.js';

interface Rig {
  agent: Agent;
  sim: SimHardware;
  config: Config;
  log: { lines: Array<{ event: string; fields: Record<string, unknown> }> };
  /** What happened, in order: relay commands and log events. */
  order: string[];
}

let stateDir: string;
let rig: Rig;

/** The agent on simulated hardware in a fresh state dir; `prepare` sets the hardware up before start
 *  and may return a condition the hardware must reach first (polled, e.g. a contact that follows on a timer). */
async function startRig(
  flags: Record<string, string> = {},
  prepare?: (sim: SimHardware) => (() => boolean) | void,
  pipelineFor?: (config: Config, log: Logger) => LedgerTelemetryPipeline,
): Promise<Rig> {
  const config = loadConfig({
    env: {},
    flags: { 'state-dir': stateDir, 'health-port': '0', 'http-port': '0', 'kafka-brokers': '', 'mqtt-url': '', 'meter-poll-ms': '50', ...flags },
  });
  config.sim.relayFollowMs = 0;
  const sim = createSimHardware({ ...config.sim, meterTimeoutMs: 100 });
  const ready = prepare?.(sim);
  if (ready) await eventually(ready);
  const order: string[] = [];
  const { relay } = sim.hardware;
  const open = relay.open.bind(relay);
  const close = relay.close.bind(relay);
  relay.open = () => (order.push('relay:open'), open());
  relay.close = () => (order.push('relay:close'), close());
  const lines: Rig['log']['lines'] = [];
  const logger = createLogger({
    pretty: false,
    level: 'debug',
    write: (text) => {
      const { event, ...fields } = JSON.parse(text.replace(/^<\d>/, '')) as { event: string };
      order.push(`log:${event}`);
      lines.push({ event, fields });
    },
  });
  const agent = new Agent({
    config,
    log: logger,
    hardware: { kind: 'sim', hardware: sim.hardware, createMeter: () => sim.simMeter, meterLabel: 'sim', simulation: sim.simulation },
    env: {},
    pipeline: pipelineFor?.(config, logger),
  });
  await agent.start();
  return { agent, sim, config, log: { lines }, order };
}

/** Resolves once the predicate holds, checking on every event-loop turn (bounded). */
async function eventually(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function info(agent: Agent) {
  return JSON.parse(agent.handleLine('INFO', '127.0.0.1')) as {
    state: string;
    session: { kwh: number; driver: string } | null;
    faults: Array<{ code: string }>;
    relay: { commanded: string; feedback: string };
    meter: { import_kwh: number } | null;
  };
}

async function charging(r: Rig): Promise<void> {
  await eventually(() => info(r.agent).meter !== null);
  assert.equal(r.agent.handleLine('AUTORIZAR_SUMINISTRO#D1', '127.0.0.1'), 'ACK#AUTORIZAR_SUMINISTRO');
  r.sim.simulation.inject('plug', []);
  await eventually(() => info(r.agent).state === 'Charging' && info(r.agent).relay.feedback === 'closed');
}

// every test gets a fresh agent on simulated hardware in its own state directory
beforeEach(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'charger-controller-'));
  rig = await startRig();
});
afterEach(async () => {
  await rig.agent.stop('test');
  rmSync(stateDir, { recursive: true, force: true });
});

describe('controller: every protocol line', () => {
  it('STATUS? and HEALTH_CHECK answer OK while healthy and count the checks', () => {
    assert.equal(rig.agent.handleLine('STATUS?', '127.0.0.1'), 'OK');
    assert.equal(rig.agent.handleLine('HEALTH_CHECK', '127.0.0.1'), 'OK');
    assert.deepEqual(rig.agent.snapshot().healthChecks, { ok: 2, ko: 0 });
  });

  it('INFO is one line of JSON with state, cp_id, session, meter, faults and uptime', async () => {
    await charging(rig);
    const line = rig.agent.handleLine('INFO', '127.0.0.1');
    assert.equal(line.includes('\n'), false);
    const parsed = JSON.parse(line);
    assert.equal(parsed.state, 'Charging');
    assert.equal(parsed.cp_id, 'CP-001');
    assert.equal(parsed.session.driver, 'D1');
    assert.equal(typeof parsed.meter.import_kwh, 'number');
    assert.deepEqual(parsed.faults, []);
    assert.equal(typeof parsed.uptime_s, 'number');
    assert.equal(parsed.meter.frequency_hz, 50);
    assert.equal(parsed.meter.export_kwh, 0);
  });

  it('other protocols use the ChargePoint interface: commands with a refusal code, and every telemetry event', async () => {
    const events: string[] = [];
    const unsubscribe = rig.agent.onTelemetry((event) => events.push(event.type));
    assert.deepEqual(rig.agent.command({ kind: 'authorize', driverId: 'bad id' }, 'ocpp'), { accepted: false, reason: 'BAD_ID' });
    assert.deepEqual(rig.agent.command({ kind: 'authorize', driverId: 'D7' }, 'ocpp'), { accepted: true });
    assert.ok(rig.log.lines.some((l) => l.event === 'command_received' && l.fields.peer === 'ocpp' && l.fields.accepted === true));
    rig.sim.simulation.inject('plug', []);
    await eventually(() => events.includes('SESSION_STARTED'));
    unsubscribe();
    const stopping = rig.agent.stop('test');
    assert.deepEqual(rig.agent.command({ kind: 'resume' }, 'ocpp'), { accepted: false, reason: 'SHUTTING_DOWN' });
    await stopping;
    assert.ok(!events.includes('SUPPLY_END'), 'no event after unsubscribing');
  });

  it('AUTORIZAR_SUMINISTRO answers ACK, then NACK with BUSY, BAD_ID, UNAVAILABLE or FAULTED', () => {
    const a = rig.agent;
    assert.equal(a.handleLine('AUTORIZAR_SUMINISTRO#bad id', 'x'), 'NACK#AUTORIZAR_SUMINISTRO#BAD_ID');
    assert.equal(a.handleLine('AUTORIZAR_SUMINISTRO#D1', 'x'), 'ACK#AUTORIZAR_SUMINISTRO');
    assert.equal(a.handleLine('AUTORIZAR_SUMINISTRO#D2', 'x'), 'NACK#AUTORIZAR_SUMINISTRO#BUSY');
    assert.equal(a.handleLine('PARAR', 'x'), 'ACK#PARAR');
    assert.equal(a.handleLine('AUTORIZAR_SUMINISTRO#D2', 'x'), 'NACK#AUTORIZAR_SUMINISTRO#UNAVAILABLE');
    assert.equal(a.handleLine('REANUDAR', 'x'), 'ACK#REANUDAR');
    rig.sim.simulation.inject('estop', ['on']);
    assert.equal(a.handleLine('AUTORIZAR_SUMINISTRO#D2', 'x'), 'NACK#AUTORIZAR_SUMINISTRO#FAULTED');
  });

  it('PARAR mid-charge ends the supply (stopped_by_central) and leaves it Unavailable; REANUDAR restores it', async () => {
    await charging(rig);
    assert.equal(rig.agent.handleLine('PARAR', 'x'), 'ACK#PARAR');
    await eventually(() => info(rig.agent).state === 'Unavailable');
    assert.ok(rig.log.lines.some((l) => l.event === 'session_ended' && l.fields.reason === 'stopped_by_central'));
    assert.equal(rig.agent.handleLine('STATUS?', 'x'), 'OK', 'out of service is not a fault');
    assert.equal(rig.agent.handleLine('REANUDAR', 'x'), 'ACK#REANUDAR');
    assert.equal(info(rig.agent).state, 'Available');
  });

  it('REANUDAR is refused with a reason while a hardware fault is active', () => {
    rig.agent.handleLine('PARAR', 'x');
    rig.sim.simulation.inject('fault', []);
    assert.equal(rig.agent.handleLine('REANUDAR', 'x'), 'NACK#REANUDAR#FAULTED');
    assert.equal(rig.agent.handleLine('STATUS?', 'x'), 'KO');
  });

  it('RESET clears a welded contactor only once the contact has opened', async () => {
    rig.sim.simulation.inject('relay', ['weld']);
    await eventually(() => info(rig.agent).faults.some((f) => f.code === 'relay_welded'), 3000);
    assert.equal(rig.agent.handleLine('RESET', 'x'), 'NACK#RESET#RELAY_WELDED');
    rig.sim.simulation.inject('relay', ['normal']);
    await eventually(() => info(rig.agent).relay.feedback === 'open');
    assert.equal(rig.agent.handleLine('RESET', 'x'), 'ACK#RESET');
    assert.equal(rig.agent.handleLine('STATUS?', 'x'), 'OK');
  });

  it('SIM# lines drive the simulated hardware, and unknown injections are refused', () => {
    assert.equal(rig.agent.handleLine('SIM#PLUG', 'x'), 'ACK#SIM#PLUG');
    assert.equal(rig.sim.hardware.plugPresent.read(), true);
    assert.equal(rig.agent.handleLine('SIM#ESTOP#SIDEWAYS', 'x'), 'NACK#SIM#USAGE');
    assert.equal(rig.agent.handleLine('SIM#TELEPORT', 'x'), 'NACK#SIM#UNKNOWN_INJECTION');
  });

  it('anything else is NACK#UNKNOWN_COMMAND', () => {
    for (const line of ['', 'status?', 'PARAR#NOW', 'GET / HTTP/1.1', '\u0000']) {
      assert.equal(rig.agent.handleLine(line, 'x'), 'NACK#UNKNOWN_COMMAND', JSON.stringify(line));
    }
  });
});

describe('controller: safety order', () => {
  it('an e-stop edge opens the relay before anything is logged or reported', async () => {
    await charging(rig);
    rig.order.length = 0;
    rig.sim.simulation.inject('estop', ['on']);
    assert.equal(rig.order[0], 'relay:open');
    assert.ok(rig.order.indexOf('log:fault_raised') > 0);
    // the session ends with a meter reading taken after the contactor opened: the next poll
    await eventually(() => rig.order.includes('log:session_ended'));
    assert.ok(rig.order.indexOf('log:session_ended') > rig.order.indexOf('log:fault_raised'));
  });

  it('logs session_interrupted for a session a crash left open only once its end is committed', async () => {
    await rig.agent.stop('test');
    let commit!: (committed: boolean) => void;
    const durable = new Promise<boolean>((resolve) => (commit = resolve));
    let asked = 0;
    const crashed = {
      session: { id: 'S-CRASHED', driverId: 'D-1', authorizedAt: '2026-12-02T05:00:00.000Z', kwh: 0.5, importe: 0.1, lastImportKwh: 1000.5 },
      event: { type: 'SUPPLY_END', seq: 7 },
      closedWith: 'first_reading_after_restart',
      durable,
    } as unknown as InterruptedSession;
    rig = await startRig({}, undefined, (config, log) => {
      const pipeline = createTelemetryPipeline({ config, log });
      pipeline.recoverInterrupted = async () => {
        asked += 1;
        return [crashed];
      };
      return pipeline;
    });
    await eventually(() => asked === 1); // at the first meter reading
    await new Promise((resolve) => setTimeout(resolve, 50));
    const interrupted = () => rig.log.lines.filter((line) => line.event === 'session_interrupted');
    assert.deepEqual(interrupted(), [], 'not logged while the SUPPLY_END is not committed');
    commit(true);
    await eventually(() => interrupted().length === 1);
    assert.equal(interrupted()[0]!.fields.session, 'S-CRASHED');
    assert.equal(interrupted()[0]!.fields.committed, true);
  });

  it('a relay line found closed at start is driven open before anything else happens', async () => {
    await rig.agent.stop('test');
    // e.g. a line left energised by a previous process, or wiring whose default is not "open"
    rig = await startRig({}, (sim) => {
      sim.hardware.relay.close();
      return () => sim.hardware.relayFeedback!.read();
    });
    const firstAction = rig.order.find((entry) => entry !== 'log:agent_started');
    assert.equal(firstAction, 'relay:open', rig.order.join(' '));
    assert.equal(rig.sim.simRelay.isCommandedClosed, false);
    await eventually(() => info(rig.agent).relay.feedback === 'open');
    assert.deepEqual(info(rig.agent).faults, [], 'a contact that opens when told is not a fault');
  });

  it('the relay is commanded open at start, and the feedback contact seen closed at start is a welded fault', async () => {
    await rig.agent.stop('test');
    rig = await startRig({}, (sim) => sim.simRelay.setMode('welded'));
    assert.equal(rig.sim.simRelay.isCommandedClosed, false);
    await eventually(() => rig.agent.snapshot().faults.some((f) => f.code === 'relay_welded'), 3000);
    assert.equal(rig.agent.handleLine('STATUS?', 'x'), 'KO');
  });

  it('stop() opens the relay and ends a running session with reason shutdown', async () => {
    await charging(rig);
    rig.order.length = 0;
    await rig.agent.stop('test');
    assert.equal(rig.order[1], 'relay:open', rig.order.join(' '));
    assert.ok(rig.log.lines.some((l) => l.event === 'session_ended' && l.fields.reason === 'shutdown'));
    assert.equal(rig.sim.simRelay.isCommandedClosed, false);
  });

  it('a contactor whose opening edge is late is read before the feedback deadline, not latched as welded', async () => {
    await rig.agent.stop('test');
    // the line itself follows the coil, but its edges never reach the controller (a busy or late watcher)
    rig = await startRig({}, (sim) => {
      const line = sim.hardware.relayFeedback!;
      sim.hardware.relayFeedback = { read: () => line.read(), watch: () => () => {}, release: () => line.release() };
    });
    await eventually(() => info(rig.agent).meter !== null);
    rig.agent.handleLine('AUTORIZAR_SUMINISTRO#D1', 'x');
    rig.sim.simulation.inject('plug', []);
    await eventually(() => info(rig.agent).state === 'Charging' && info(rig.agent).relay.feedback === 'closed', 10_000);
    rig.sim.simulation.inject('unplug', []);
    await eventually(() => info(rig.agent).state === 'Available', 10_000);
    assert.deepEqual(info(rig.agent).faults, []);
    assert.ok(rig.log.lines.some((l) => l.event === 'session_ended' && l.fields.reason === 'unplugged'));
  });

  it('after a loop stall past the feedback deadline, the next event reads the contact first instead of latching relay_failure', async () => {
    await rig.agent.stop('test');
    // the contact follows the coil at once (as a contactor does, with no event loop), but its edge is
    // still queued behind the stalled loop and the debounced read() still gives the level before it
    rig = await startRig({}, (sim) => {
      const line = sim.hardware.relayFeedback!;
      sim.hardware.relayFeedback = {
        read: () => line.read(),
        readNow: () => sim.simRelay.isCommandedClosed,
        watch: () => () => {},
        release: () => line.release(),
      };
    });
    await eventually(() => info(rig.agent).meter !== null);
    rig.agent.handleLine('AUTORIZAR_SUMINISTRO#D1', 'x');
    const closes = rig.order.filter((entry) => entry === 'relay:close').length;
    rig.sim.simulation.inject('plug', []);
    assert.equal(rig.order.filter((entry) => entry === 'relay:close').length, closes + 1, 'the plug closed the relay in the same turn');
    const stalledUntil = Date.now() + rig.config.charging.feedbackTimeoutMs + 100;
    while (Date.now() < stalledUntil); // the loop stalls: no timer, no edge runs
    // the first event after the stall, one that leaves the relay closed (refused: a session runs)
    rig.agent.command({ kind: 'authorize', driverId: 'D2' }, 'test');
    assert.deepEqual(info(rig.agent).faults, []);
    assert.equal(info(rig.agent).relay.feedback, 'closed');
    assert.ok(!rig.log.lines.some((l) => l.event === 'fault_raised'), 'no fault was raised');
  });
});
