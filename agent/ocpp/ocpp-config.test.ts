import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../config/load.js';

function problemsOf(yaml: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'ocpp-config-'));
  try {
    writeFileSync(join(dir, 'c.yaml'), yaml);
    loadConfig({ env: {}, file: join(dir, 'c.yaml'), flags: { 'state-dir': dir } });
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the ocpp: settings', () => {
  it('are off by default and turned on by --ocpp-url or CHARGER_OCPP_URL', () => {
    assert.equal(loadConfig({ env: {} }).ocpp.url, '');
    assert.equal(loadConfig({ env: { CHARGER_OCPP_URL: 'ws://csms:8180/ocpp' } }).ocpp.url, 'ws://csms:8180/ocpp');
    assert.equal(loadConfig({ env: {}, flags: { 'ocpp-url': 'wss://csms/ocpp', 'ocpp-id': 'CP-9' } }).ocpp.chargePointId, 'CP-9');
  });

  it('name the path of every problem at once: the URL scheme, a profile without its password or TLS, an unreadable file', () => {
    const problems = problemsOf('ocpp:\n  url: http://csms/ocpp\n  securityProfile: 1\n');
    assert.ok(problems.some((p) => p.startsWith('ocpp.url: a ws:// or wss:// URL')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('ocpp.passwordFile: security profile 1 and 2 need passwordFile')), problems.join('\n'));
    const tls = problemsOf('ocpp:\n  url: ws://csms/ocpp\n  securityProfile: 2\n  passwordFile: /nonexistent/ocpp-password\n');
    assert.ok(tls.some((p) => p.startsWith('ocpp.url: security profile 2 needs a wss:// url')), tls.join('\n'));
    assert.ok(tls.some((p) => /ocpp\.passwordFile: cannot read \/nonexistent\/ocpp-password \(ENOENT\)/.test(p)), tls.join('\n'));
  });
});
