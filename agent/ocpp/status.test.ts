import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ActiveFault } from '../charging/types.js';
import { chargePointStatus, connectorStatus, SUSPEND_SETTLE_MS, type StatusInput } from './status.js';

const base: StatusInput = { state: 'Available', faults: [], plugged: false, endedWhilePlugged: false };
const fault = (code: ActiveFault['code'], detail?: string): ActiveFault => ({ code, sinceMs: 0, latched: false, detail });

describe('OCPP connector status', () => {
  it('is Available with no vehicle and Preparing once one plugs in or a driver is authorized', () => {
    assert.equal(connectorStatus(base).status, 'Available');
    assert.equal(connectorStatus({ ...base, plugged: true }).status, 'Preparing');
    assert.equal(connectorStatus({ ...base, state: 'Authorized' }).status, 'Preparing');
  });

  it('is Charging while energy flows and SuspendedEV when the vehicle draws nothing after the contactor settled', () => {
    const charging = { ...base, state: 'Charging' as const, plugged: true };
    assert.equal(connectorStatus({ ...charging, powerW: 7400, chargingForMs: 10_000 }).status, 'Charging');
    assert.equal(connectorStatus({ ...charging, powerW: 0, chargingForMs: SUSPEND_SETTLE_MS }).status, 'SuspendedEV');
    assert.equal(connectorStatus({ ...charging, powerW: 0, chargingForMs: 500 }).status, 'Charging', 'the reading from before the contactor closed says nothing');
  });

  it('stays Finishing after a transaction while the vehicle is still plugged in, Available once it leaves', () => {
    assert.equal(connectorStatus({ ...base, state: 'Finishing', plugged: true }).status, 'Finishing');
    assert.equal(connectorStatus({ ...base, plugged: true, endedWhilePlugged: true }).status, 'Finishing');
    assert.equal(connectorStatus({ ...base, plugged: false, endedWhilePlugged: true }).status, 'Available');
  });

  it('is Unavailable out of service', () => {
    assert.deepEqual(connectorStatus({ ...base, state: 'Unavailable' }), { status: 'Unavailable', errorCode: 'NoError' });
  });

  it('is Faulted with the error code of the first fault and the agent fault code as vendorErrorCode', () => {
    const cases: Array<[ActiveFault['code'], string]> = [
      ['relay_welded', 'PowerSwitchFailure'],
      ['relay_failure', 'PowerSwitchFailure'],
      ['meter_stale', 'PowerMeterFailure'],
      ['emergency_stop', 'OtherError'],
      ['hardware_fault', 'OtherError'],
    ];
    for (const [code, errorCode] of cases) {
      const status = connectorStatus({ ...base, state: 'Faulted', faults: [fault(code, 'x'.repeat(80))] });
      assert.equal(status.status, 'Faulted');
      assert.equal(status.errorCode, errorCode, code);
      assert.equal(status.vendorErrorCode, code);
      assert.equal(status.info?.length, 50, 'info fits the schema (50 characters)');
    }
  });

  it('reports the charge point as a whole (connector 0) as Available unless it is Unavailable or Faulted', () => {
    assert.equal(chargePointStatus(connectorStatus({ ...base, state: 'Charging', plugged: true })).status, 'Available');
    assert.equal(chargePointStatus(connectorStatus({ ...base, state: 'Unavailable' })).status, 'Unavailable');
    assert.equal(chargePointStatus(connectorStatus({ ...base, state: 'Faulted', faults: [fault('meter_stale')] })).errorCode, 'PowerMeterFailure');
  });
});
