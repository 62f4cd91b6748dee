// Over 400 lines on purpose: every transition of the pure core, one behaviour per test, in the order
// of a session; the core is small and each case is a few lines, so splitting would scatter one table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MeterReading } from '../../drivers/types.js';
import { chargeState, initialState, next } from './state-machine.js';
import type { CoreAction, CoreConfig, CoreEvent, CoreState, StepResult, TelemetryEvent } from './types.js';

const CONFIG: CoreConfig = {
  cpId: 'CP-T',
  pricePerKwh: 0.2,
  authorizationTimeoutMs: 60_000,
  consumoIntervalMs: 1000,
  meterStaleMs: 10_000,
  feedbackTimeoutMs: 500,
  hasFeedback: true,
  finalReadingWaitMs: 2500,
};

function reading(importKwh: number, takenAtMs: number, powerW = 7400): MeterReading {
  return { importKwh, powerW, voltageV: [230, 230, 230], currentA: [10.7, 10.7, 10.7], phasePowerW: [], takenAtMs };
}

/** Drives the core like the controller does, keeping every step's output. */
class Harness {
  state: CoreState = initialState();
  nowMs = 1_700_000_000_000;
  last!: StepResult;
  readonly log: StepResult[] = [];

  constructor(readonly config: CoreConfig = CONFIG) {}

  send(event: CoreEvent, atMs = this.nowMs): StepResult {
    this.nowMs = atMs;
    this.last = next(this.config, this.state, event, this.nowMs);
    this.state = this.last.state;
    this.log.push(this.last);
    return this.last;
  }

  after(ms: number, event: CoreEvent = { type: 'tick' }): StepResult {
    return this.send(event, this.nowMs + ms);
  }

  get charge() {
    return chargeState(this.state);
  }

  /** The relay follows its command, as a healthy contactor does. */
  follow(result: StepResult = this.last): void {
    for (const action of result.actions) {
      if (action.type === 'relay') this.send({ type: 'relay_feedback', closed: action.close });
    }
  }

  telemetry(type?: string): TelemetryEvent[] {
    return this.log
      .flatMap((step) => step.actions)
      .filter((a): a is Extract<CoreAction, { type: 'telemetry' }> => a.type === 'telemetry')
      .map((a) => a.event)
      .filter((e) => type === undefined || e.type === type);
  }

  /** The next meter poll, 500 ms on: a reading whose read began after everything so far. */
  poll(importKwh: number, powerW = 0): StepResult {
    return this.after(500, { type: 'meter_reading', reading: reading(importKwh, this.nowMs + 500, powerW) });
  }

  /** Authorized, plugged, relay closed and confirmed: Charging. */
  startCharging(startKwh = 100): void {
    this.send({ type: 'meter_reading', reading: reading(startKwh, this.nowMs) });
    this.send({ type: 'authorize', driverId: 'DRIVER-1' });
    this.follow(this.send({ type: 'plug', present: true }));
  }
}

describe('charging core: Available and Authorized', () => {
  it('starts Available with the relay commanded open', () => {
    const h = new Harness();
    assert.equal(chargeState(h.state), 'Available');
    assert.equal(h.state.relay.commandedClosed, false);
  });

  it('an authorization makes it Authorized and emits SESSION_STARTED with the driver', () => {
    const h = new Harness();
    const out = h.send({ type: 'authorize', driverId: 'DRIVER-42' });
    assert.deepEqual(out.result, { accepted: true });
    assert.equal(h.charge, 'Authorized');
    const [started] = h.telemetry('SESSION_STARTED');
    assert.equal(started?.user_id, 'DRIVER-42');
    assert.equal(started?.cp_id, 'CP-T');
    assert.match(started?.session_id ?? '', /^CP-T-\d{8}T\d{6}Z-1$/);
    assert.equal(h.telemetry('CP_STATUS').at(-1)?.state, 'Authorized');
    assert.equal(out.actions.some((a) => a.type === 'relay' && a.close), false, 'no relay close before a vehicle');
  });

  it('an authorization without a vehicle expires after the configured time', () => {
    const h = new Harness();
    h.send({ type: 'authorize', driverId: 'D1' });
    h.after(59_999);
    assert.equal(h.charge, 'Authorized');
    h.after(1);
    assert.equal(h.charge, 'Available');
    const [end] = h.telemetry('SUPPLY_END');
    assert.equal(end?.reason, 'authorization_expired');
    assert.equal(end?.kwh, 0);
  });

  it('asks to be woken at the authorization deadline', () => {
    const h = new Harness();
    const out = h.send({ type: 'authorize', driverId: 'D1' });
    assert.equal(out.wakeAtMs, h.nowMs + 60_000);
  });

  it('rejects a bad driver id, and a second authorization while busy', () => {
    const h = new Harness();
    assert.deepEqual(h.send({ type: 'authorize', driverId: '' }).result, { accepted: false, reason: 'BAD_ID' });
    assert.deepEqual(h.send({ type: 'authorize', driverId: 'a b' }).result, { accepted: false, reason: 'BAD_ID' });
    assert.deepEqual(h.send({ type: 'authorize', driverId: 'x'.repeat(65) }).result, { accepted: false, reason: 'BAD_ID' });
    h.send({ type: 'authorize', driverId: 'D1' });
    assert.deepEqual(h.send({ type: 'authorize', driverId: 'D2' }).result, { accepted: false, reason: 'BUSY' });
  });

  it('rejects an authorization while out of service or faulted', () => {
    const h = new Harness();
    h.send({ type: 'stop' });
    assert.deepEqual(h.send({ type: 'authorize', driverId: 'D1' }).result, { accepted: false, reason: 'UNAVAILABLE' });
    h.send({ type: 'resume' });
    h.send({ type: 'emergency_stop', active: true });
    assert.deepEqual(h.send({ type: 'authorize', driverId: 'D1' }).result, { accepted: false, reason: 'FAULTED' });
  });
});

describe('charging core: Charging', () => {
  it('plugging in an authorized vehicle with a fresh reading closes the relay and charges', () => {
    const h = new Harness();
    h.send({ type: 'meter_reading', reading: reading(100, h.nowMs) });
    h.send({ type: 'authorize', driverId: 'D1' });
    const out = h.send({ type: 'plug', present: true });
    assert.deepEqual(out.actions[0], { type: 'relay', close: true });
    assert.equal(h.charge, 'Charging');
  });

  it('a vehicle plugged before the authorization starts charging on the authorization', () => {
    const h = new Harness();
    h.send({ type: 'meter_reading', reading: reading(100, h.nowMs) });
    h.send({ type: 'plug', present: true });
    assert.equal(h.charge, 'Available');
    const out = h.send({ type: 'authorize', driverId: 'D1' });
    assert.ok(out.actions.some((a) => a.type === 'relay' && a.close));
    assert.equal(h.charge, 'Charging');
  });

  it('without a fresh meter reading a session does not start: meter_stale fault, relay stays open', () => {
    const h = new Harness();
    h.send({ type: 'meter_reading', reading: reading(100, h.nowMs) });
    h.after(20_000, { type: 'authorize', driverId: 'D1' });
    const out = h.send({ type: 'plug', present: true });
    assert.equal(out.actions.some((a) => a.type === 'relay' && a.close), false);
    assert.equal(h.charge, 'Faulted');
    assert.equal(h.state.faults[0]?.code, 'meter_stale');
    assert.equal(h.telemetry('SUPPLY_END')[0]?.reason, 'fault');
  });

  it('counts kWh from the import register at the start and costs it at the price', () => {
    const h = new Harness();
    h.startCharging(100);
    h.after(1000, { type: 'meter_reading', reading: reading(100.5, h.nowMs + 1000) });
    h.after(1000, { type: 'meter_reading', reading: reading(101.25, h.nowMs + 1000) });
    const consumo = h.telemetry('CONSUMO');
    assert.deepEqual(consumo.map((e) => e.kwh), [0.5, 1.25]);
    assert.deepEqual(consumo.map((e) => e.importe), [0.1, 0.25]);
    assert.equal(consumo[1]?.power_w, 7400);
    assert.equal(consumo[1]?.ts, new Date(h.nowMs).toISOString(), 'CONSUMO carries the time of its reading');
  });

  it('emits CONSUMO at most once per interval however fast the meter is read', () => {
    const h = new Harness();
    h.startCharging(100);
    for (let i = 1; i <= 10; i++) h.after(250, { type: 'meter_reading', reading: reading(100 + i / 100, h.nowMs + 250) });
    assert.equal(h.telemetry('CONSUMO').length, 3); // at 250 ms (first), 1250 ms, 2250 ms
  });

  it('ignores a reading whose import register ran backwards', () => {
    const h = new Harness();
    h.startCharging(100);
    h.after(1000, { type: 'meter_reading', reading: reading(101, h.nowMs + 1000) });
    h.after(1000, { type: 'meter_reading', reading: reading(50, h.nowMs + 1000) });
    assert.equal(h.state.session?.kwh, 1);
    assert.equal(h.state.lastReading?.importKwh, 101);
  });
});

describe('charging core: Finishing and session end', () => {
  it('unplugging opens the relay, waits in Finishing for the feedback and a reading after it, then bills that reading', () => {
    const h = new Harness();
    h.startCharging(100);
    h.after(1000, { type: 'meter_reading', reading: reading(102, h.nowMs + 1000) });
    const out = h.send({ type: 'plug', present: false });
    assert.deepEqual(out.actions[0], { type: 'relay', close: false });
    assert.equal(h.charge, 'Finishing');
    h.follow(out);
    assert.equal(h.charge, 'Finishing', 'open, but no reading taken after the opening yet');
    assert.equal(h.telemetry('SUPPLY_END').length, 0);
    h.poll(102.002); // the energy that flowed until the contactor opened
    assert.equal(h.charge, 'Available');
    const [end] = h.telemetry('SUPPLY_END');
    assert.equal(end?.reason, 'unplugged');
    assert.equal(end?.meter_import_kwh, 102.002);
    assert.equal(end?.final_reading, 'after_open');
    assert.equal(end?.kwh, 2.002);
    assert.equal(end?.importe, 0.4004);
    assert.equal(end?.user_id, 'DRIVER-1');
  });

  it('a reading whose read began before the feedback confirmed the opening is not the final one', () => {
    const h = new Harness();
    h.startCharging(100);
    const requestedAtMs = h.nowMs + 10;
    h.follow(h.after(20, { type: 'plug', present: false }));
    h.after(30, { type: 'meter_reading', reading: { ...reading(100.5, h.nowMs + 30), requestedAtMs } });
    assert.equal(h.charge, 'Finishing');
    h.poll(100.501);
    assert.deepEqual(
      h.telemetry('SUPPLY_END').map((e) => [e.meter_import_kwh, e.final_reading]),
      [[100.501, 'after_open']],
    );
  });

  it('without a reading after the opening within finalReadingWaitMs, it bills the last reading and says so', () => {
    const h = new Harness();
    h.startCharging(100);
    h.after(1000, { type: 'meter_reading', reading: reading(101, h.nowMs + 1000) });
    h.follow(h.send({ type: 'plug', present: false }));
    const openedAtMs = h.nowMs;
    assert.equal(h.last.wakeAtMs, openedAtMs + CONFIG.finalReadingWaitMs);
    h.after(CONFIG.finalReadingWaitMs - 1);
    assert.equal(h.charge, 'Finishing');
    h.after(1);
    assert.equal(h.charge, 'Available');
    const [end] = h.telemetry('SUPPLY_END');
    assert.deepEqual([end?.meter_import_kwh, end?.kwh, end?.final_reading], [101, 1, 'last_before_open']);
  });

  it('without a feedback contact the session ends on the first reading taken after the open command', () => {
    const h = new Harness({ ...CONFIG, hasFeedback: false });
    h.send({ type: 'meter_reading', reading: reading(100, h.nowMs) });
    h.send({ type: 'authorize', driverId: 'D1' });
    h.send({ type: 'plug', present: true });
    h.after(1000, { type: 'plug', present: false });
    assert.equal(h.charge, 'Finishing');
    h.poll(100.002);
    assert.equal(h.charge, 'Available');
    const [end] = h.telemetry('SUPPLY_END');
    assert.deepEqual([end?.reason, end?.meter_import_kwh, end?.final_reading], ['unplugged', 100.002, 'after_open']);
  });

  it('PARAR ends the supply with stopped_by_central and leaves it Unavailable; REANUDAR brings it back', () => {
    const h = new Harness();
    h.startCharging();
    const out = h.send({ type: 'stop' });
    assert.deepEqual(out.result, { accepted: true });
    assert.equal(h.charge, 'Finishing');
    h.follow(out);
    h.poll(100);
    assert.equal(h.charge, 'Unavailable');
    assert.equal(h.telemetry('SUPPLY_END')[0]?.reason, 'stopped_by_central');
    assert.deepEqual(h.send({ type: 'resume' }).result, { accepted: true });
    assert.equal(h.charge, 'Available');
  });

  it('PARAR of an authorization not yet charging ends it at once', () => {
    const h = new Harness();
    h.send({ type: 'authorize', driverId: 'D1' });
    h.send({ type: 'stop' });
    assert.equal(h.charge, 'Unavailable');
    assert.equal(h.telemetry('SUPPLY_END')[0]?.reason, 'stopped_by_central');
  });

  it('shutdown opens the relay and ends a running session with reason shutdown at once', () => {
    const h = new Harness();
    h.startCharging();
    const out = h.send({ type: 'shutdown' });
    assert.deepEqual(out.actions[0], { type: 'relay', close: false });
    assert.equal(h.telemetry('SUPPLY_END')[0]?.reason, 'shutdown');
    assert.equal(h.telemetry('SUPPLY_END')[0]?.final_reading, 'last_before_open', 'no time to wait for a reading');
    assert.equal(h.state.session, undefined);
  });

  it('every SESSION_STARTED gets exactly one SUPPLY_END', () => {
    const h = new Harness();
    h.startCharging();
    h.follow(h.send({ type: 'plug', present: false }));
    h.poll(100);
    h.send({ type: 'authorize', driverId: 'D2' });
    h.after(60_000);
    const started = h.telemetry('SESSION_STARTED').map((e) => e.session_id);
    const ended = h.telemetry('SUPPLY_END').map((e) => e.session_id);
    assert.deepEqual(ended, started);
    assert.notEqual(started[0], started[1]);
  });
});

describe('charging core: faults', () => {
  it('an e-stop mid-charge opens the relay first, then reports AVERIADO and SUPPLY_END with the reading after the opening', () => {
    const h = new Harness();
    h.startCharging(100);
    h.after(1000, { type: 'meter_reading', reading: reading(101, h.nowMs + 1000) });
    const faultAtMs = h.nowMs;
    const out = h.send({ type: 'emergency_stop', active: true });
    assert.deepEqual(out.actions[0], { type: 'relay', close: false });
    const types = out.actions.map((a) => (a.type === 'telemetry' ? a.event.type : 'relay'));
    assert.deepEqual(types, ['relay', 'CP_STATUS']);
    assert.equal(h.charge, 'Faulted');
    h.follow(out);
    const last = h.poll(101.001);
    assert.deepEqual(
      last.actions.map((a) => (a.type === 'telemetry' ? a.event.type : 'relay')),
      ['AVERIADO', 'SUPPLY_END'],
    );
    const averiado = h.telemetry('AVERIADO')[0];
    assert.equal(averiado?.fault, 'emergency_stop');
    assert.equal(averiado?.ts, new Date(faultAtMs).toISOString(), 'when the fault happened');
    assert.equal(averiado?.power_w, 7400, 'what the meter showed at the fault');
    assert.deepEqual([averiado?.kwh, averiado?.meter_import_kwh, averiado?.final_reading], [1.001, 101.001, 'after_open']);
    assert.deepEqual([h.telemetry('SUPPLY_END')[0]?.reason, h.telemetry('SUPPLY_END')[0]?.meter_import_kwh], ['fault', 101.001]);
    assert.equal(h.charge, 'Faulted');
  });

  it('releasing the e-stop clears the fault and the session does not resume', () => {
    const h = new Harness();
    h.startCharging();
    h.follow(h.send({ type: 'emergency_stop', active: true }));
    h.poll(100);
    h.send({ type: 'emergency_stop', active: false });
    assert.equal(h.charge, 'Available');
    assert.equal(h.state.relay.commandedClosed, false);
    assert.equal(h.state.session, undefined);
  });

  it('a fault outside a session opens the relay and reports only CP_STATUS', () => {
    const h = new Harness();
    const out = h.send({ type: 'hardware_fault', active: true, detail: 'simulated' });
    assert.deepEqual(out.actions[0], { type: 'relay', close: false });
    assert.deepEqual(h.telemetry().map((e) => e.type), ['CP_STATUS']);
    assert.deepEqual(h.telemetry('CP_STATUS')[0]?.faults, ['hardware_fault']);
    h.send({ type: 'hardware_fault', active: false });
    assert.equal(h.charge, 'Available');
  });

  it('a meter silent past the stale limit during a charge is a fault; a good reading clears it', () => {
    const h = new Harness();
    h.startCharging(100);
    const lastReadingMs = h.nowMs;
    assert.equal(h.last.wakeAtMs, lastReadingMs + 10_001);
    h.after(10_000);
    assert.equal(h.charge, 'Charging', 'exactly at the limit it is still fresh');
    h.after(1);
    assert.equal(h.charge, 'Faulted');
    assert.equal(h.state.faults[0]?.code, 'meter_stale');
    assert.equal(h.state.relay.commandedClosed, false);
    h.follow();
    h.after(1000, { type: 'meter_reading', reading: reading(101, h.nowMs + 1000) });
    assert.equal(h.telemetry('AVERIADO')[0]?.fault, 'meter_stale');
    assert.equal(h.telemetry('AVERIADO')[0]?.final_reading, 'after_open', 'the meter came back in time to bill after the opening');
    assert.equal(h.charge, 'Available');
    assert.ok(lastReadingMs < h.nowMs);
  });

  it('asks to be woken when the meter would become stale during a charge', () => {
    const h = new Harness();
    h.startCharging();
    const out = h.after(500, { type: 'meter_reading', reading: reading(100.1, h.nowMs + 500) });
    assert.equal(out.wakeAtMs, h.nowMs + 10_001);
  });

  it('a feedback contact that stays closed after opening is a welded contactor, latched until reset', () => {
    const h = new Harness();
    h.startCharging();
    h.send({ type: 'plug', present: false }); // commanded open; the contact stays closed
    assert.equal(h.last.wakeAtMs, h.nowMs + 500);
    h.after(499);
    assert.equal(h.charge, 'Finishing');
    h.after(1);
    assert.equal(h.charge, 'Faulted');
    assert.deepEqual(h.state.faults.map((f) => f.code), ['relay_welded']);
    assert.equal(h.telemetry('SUPPLY_END')[0]?.reason, 'unplugged');
    assert.equal(h.telemetry('SUPPLY_END')[0]?.final_reading, 'last_before_open', 'a welded contactor never opened: no wait');
    assert.deepEqual(h.send({ type: 'reset' }).result, { accepted: false, reason: 'RELAY_WELDED' });
    h.send({ type: 'relay_feedback', closed: false });
    assert.equal(h.charge, 'Faulted', 'the contact opening by itself does not clear a latched fault');
    assert.deepEqual(h.send({ type: 'reset' }).result, { accepted: true });
    assert.equal(h.charge, 'Available');
  });

  it('a contact closing by itself while idle is a welded contactor too', () => {
    const h = new Harness();
    h.send({ type: 'relay_feedback', closed: true });
    h.after(500);
    assert.equal(h.state.faults[0]?.code, 'relay_welded');
  });

  it('a feedback contact that does not close after closing is a relay failure', () => {
    const h = new Harness();
    h.send({ type: 'meter_reading', reading: reading(100, h.nowMs) });
    h.send({ type: 'authorize', driverId: 'D1' });
    h.send({ type: 'plug', present: true });
    h.after(500);
    assert.equal(h.charge, 'Faulted');
    assert.equal(h.state.faults[0]?.code, 'relay_failure');
    assert.equal(h.state.relay.commandedClosed, false);
    h.poll(100);
    assert.deepEqual(h.send({ type: 'reset' }).result, { accepted: true });
    assert.equal(h.charge, 'Available');
  });

  it('a fault while out of service shows Faulted, and Unavailable again once it clears', () => {
    const h = new Harness();
    h.send({ type: 'stop' });
    h.send({ type: 'hardware_fault', active: true });
    assert.equal(h.charge, 'Faulted');
    assert.deepEqual(h.send({ type: 'resume' }).result, { accepted: false, reason: 'FAULTED' });
    h.send({ type: 'hardware_fault', active: false });
    assert.equal(h.charge, 'Unavailable');
  });
});

describe('charging core: purity and reporting', () => {
  it('never mutates the state it is given', () => {
    const h = new Harness();
    h.startCharging();
    const before = structuredClone(h.state);
    next(CONFIG, h.state, { type: 'emergency_stop', active: true }, h.nowMs);
    assert.deepEqual(h.state, before);
  });

  it('reports every state change once in CP_STATUS with the previous state', () => {
    const h = new Harness();
    h.startCharging();
    h.follow(h.send({ type: 'plug', present: false }));
    h.poll(100);
    const changes = h.telemetry('CP_STATUS').map((e) => `${e.previous_state}->${e.state}`);
    assert.deepEqual(changes, ['Available->Authorized', 'Authorized->Charging', 'Charging->Finishing', 'Finishing->Available']);
  });

  it('numbers sessions from the counter it was started with', () => {
    const h = new Harness();
    h.state = initialState(41);
    h.send({ type: 'authorize', driverId: 'D1' });
    assert.match(h.state.session?.id ?? '', /-42$/);
  });
});
