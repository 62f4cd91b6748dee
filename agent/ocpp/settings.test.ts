import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../config/load.js';
import { changeConfiguration, defaultSettings, getConfiguration, KEYS } from './settings.js';

const settings = () => defaultSettings(loadConfig({ env: {}, flags: { 'state-dir': '/tmp/unused' } }));

describe('OCPP configuration keys', () => {
  it('lists every implemented key with its value and whether it is read-only, and names unknown keys', () => {
    const all = getConfiguration(settings());
    assert.equal(all.configurationKey.length, KEYS.length);
    assert.ok(all.configurationKey.every((k) => k.key.length <= 50 && typeof k.value === 'string'));
    const some = getConfiguration(settings(), ['NumberOfConnectors', 'Nope']);
    assert.deepEqual(some, { configurationKey: [{ key: 'NumberOfConnectors', readonly: true, value: '1' }], unknownKey: ['Nope'] });
  });

  it('accepts a valid change, rejects a bad value or a read-only key, and does not know other keys', () => {
    const s = settings();
    assert.equal(changeConfiguration(s, 'MeterValueSampleInterval', '15'), 'Accepted');
    assert.equal(s.meterValueSampleIntervalS, 15);
    assert.equal(changeConfiguration(s, 'MeterValueSampleInterval', '-1'), 'Rejected');
    assert.equal(changeConfiguration(s, 'HeartbeatInterval', '0'), 'Rejected');
    assert.equal(changeConfiguration(s, 'AuthorizeRemoteTxRequests', 'TRUE'), 'Accepted');
    assert.equal(s.authorizeRemoteTxRequests, true);
    assert.equal(changeConfiguration(s, 'MeterValuesSampledData', 'Energy.Active.Import.Register,SoC'), 'Rejected');
    assert.equal(changeConfiguration(s, 'NumberOfConnectors', '2'), 'Rejected');
    assert.equal(changeConfiguration(s, 'FancyKey', '1'), 'NotSupported');
  });
});
