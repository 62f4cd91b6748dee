import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stopReason } from './stop-reason.js';

describe('OCPP stop reason', () => {
  it('maps every way a session ends', () => {
    assert.equal(stopReason('unplugged'), 'EVDisconnected');
    assert.equal(stopReason('stopped_by_central'), 'Remote');
    assert.equal(stopReason('shutdown'), 'Reboot');
    assert.equal(stopReason('authorization_expired'), 'Other');
  });

  it('says EmergencyStop for the emergency stop and Other for any other fault', () => {
    assert.equal(stopReason('fault', { fault: 'emergency_stop' }), 'EmergencyStop');
    assert.equal(stopReason('fault', { fault: 'relay_welded' }), 'Other');
    assert.equal(stopReason('fault'), 'Other');
  });

  it('tells a process restart (Reboot) from a machine that booted since (PowerLoss) for an interrupted session', () => {
    assert.equal(stopReason('interrupted', { machineRebooted: false }), 'Reboot');
    assert.equal(stopReason('interrupted', { machineRebooted: true }), 'PowerLoss');
  });

  it('prefers the reason this interface ended the session for (Reset, an idTag the CSMS refused)', () => {
    assert.equal(stopReason('stopped_by_central', { override: 'SoftReset' }), 'SoftReset');
    assert.equal(stopReason('shutdown', { override: 'HardReset' }), 'HardReset');
    assert.equal(stopReason('stopped_by_central', { override: 'DeAuthorized' }), 'DeAuthorized');
  });
});
