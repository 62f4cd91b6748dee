import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HardwareSimulation } from '../../drivers/sim/simulation.js';
import type { ChargeCommand, ChargePoint, CommandOutcome } from '../charge-point.js';
import { healthySnapshot } from '../http/testing/snapshot-fixture.js';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { createProtocolDispatch } from './dispatch.js';

/** A charge point that records what it was asked and answers from a script. */
function fakeChargePoint(answer: (command: ChargeCommand) => CommandOutcome = () => ({ accepted: true })) {
  const asked: Array<{ command: ChargeCommand; source: string }> = [];
  let healthy = true;
  const chargePoint: ChargePoint = {
    command: (command, source) => (asked.push({ command, source }), answer(command)),
    healthCheck: () => healthy,
    snapshot: () =>
      healthySnapshot({
        lastReading: { importKwh: 1234.5, exportKwh: 0.25, powerW: 7400, voltageV: [230, 230.6, 229.1], currentA: [10.7, 10.7, 10.8], phasePowerW: [2466, 2467, 2467], frequencyHz: 50.01, takenAtMs: Date.UTC(2025, 0, 1, 12) },
      }),
    onTelemetry: () => () => {},
  };
  return { chargePoint, asked, setHealthy: (value: boolean) => (healthy = value) };
}

function fakeSimulation(): HardwareSimulation & { injected: string[] } {
  const injected: string[] = [];
  return {
    injected,
    injections: [{ name: 'plug', usage: 'plug', help: 'a vehicle plugs in' }],
    inject: (command, args) => (command === 'plug' ? void injected.push([command, ...args].join(' ')) : 'UNKNOWN_INJECTION'),
  };
}

describe('protocol dispatch', () => {
  it('turns each command line into one charge-point command from the peer, and its refusal code into the NACK reason', () => {
    const { chargePoint, asked } = fakeChargePoint((command) => (command.kind === 'reset' ? { accepted: false, reason: 'RELAY_WELDED' } : { accepted: true }));
    const dispatch = createProtocolDispatch({ chargePoint, log: createMemoryLogger() });
    assert.equal(dispatch.handleLine('AUTORIZAR_SUMINISTRO#D-1', '10.0.0.5'), 'ACK#AUTORIZAR_SUMINISTRO');
    assert.equal(dispatch.handleLine('PARAR', '10.0.0.5'), 'ACK#PARAR');
    assert.equal(dispatch.handleLine('REANUDAR', 'mqtt'), 'ACK#REANUDAR');
    assert.equal(dispatch.handleLine('RESET', 'mqtt'), 'NACK#RESET#RELAY_WELDED');
    assert.deepEqual(asked, [
      { command: { kind: 'authorize', driverId: 'D-1' }, source: '10.0.0.5' },
      { command: { kind: 'stop' }, source: '10.0.0.5' },
      { command: { kind: 'resume' }, source: 'mqtt' },
      { command: { kind: 'reset' }, source: 'mqtt' },
    ]);
  });

  it('answers STATUS? and HEALTH_CHECK from the health check, and anything else with NACK#UNKNOWN_COMMAND without asking the charge point', () => {
    const fake = fakeChargePoint();
    const dispatch = createProtocolDispatch({ chargePoint: fake.chargePoint, log: createMemoryLogger() });
    assert.equal(dispatch.handleLine('STATUS?', 'x'), 'OK');
    fake.setHealthy(false);
    assert.equal(dispatch.handleLine('HEALTH_CHECK', 'x'), 'KO');
    assert.equal(dispatch.handleLine('PARAR#NOW', 'x'), 'NACK#UNKNOWN_COMMAND');
    assert.equal(fake.asked.length, 0);
  });

  it('INFO carries the meter frequency, export register and per-phase values, null where the meter has none', () => {
    const { chargePoint } = fakeChargePoint();
    const info = JSON.parse(createProtocolDispatch({ chargePoint, log: createMemoryLogger() }).handleLine('INFO', 'x'));
    assert.deepEqual(info.meter, {
      import_kwh: 1234.5,
      export_kwh: 0.25,
      power_w: 7400,
      voltage_v: [230, 230.6, 229.1],
      current_a: [10.7, 10.7, 10.8],
      frequency_hz: 50.01,
      taken_at: '2025-01-01T12:00:00.000Z',
    });
    const bare = { ...chargePoint, snapshot: () => healthySnapshot({ lastReading: { importKwh: 1, powerW: 0, voltageV: [], currentA: [], phasePowerW: [], takenAtMs: 0 } }) };
    const meter = JSON.parse(createProtocolDispatch({ chargePoint: bare, log: createMemoryLogger() }).handleLine('INFO', 'x')).meter;
    assert.equal(meter.frequency_hz, null);
    assert.equal(meter.export_kwh, null);
  });

  it('SIM# lines reach the simulation only when one is wired: production hardware answers NACK#SIM#NOT_SIMULATED', () => {
    const { chargePoint, asked } = fakeChargePoint();
    const production = createProtocolDispatch({ chargePoint, log: createMemoryLogger() });
    assert.equal(production.handleLine('SIM#PLUG', 'x'), 'NACK#SIM#NOT_SIMULATED');
    const simulation = fakeSimulation();
    const simulated = createProtocolDispatch({ chargePoint, log: createMemoryLogger(), simulation });
    assert.equal(simulated.handleLine('SIM#PLUG', 'x'), 'ACK#SIM#PLUG');
    assert.equal(simulated.handleLine('SIM#TELEPORT', 'x'), 'NACK#SIM#UNKNOWN_INJECTION');
    assert.deepEqual(simulation.injected, ['plug']);
    assert.equal(asked.length, 0, 'an injection is not a command to the charge point');
  });
});
