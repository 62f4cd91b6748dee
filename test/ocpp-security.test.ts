// OCPP security profiles against the strict CSMS: 1 = HTTP basic auth with the password from a file
// (a wrong one is refused and never boots), 2 = the same over wss:// with the CSMS's CA from a file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { DevCsms } from '../agent/ocpp/dev-csms.js';
import { startAgent, stopAllAgents } from './support/agent-process.js';
import { assertSchemaClean, ocppArgs } from './support/ocpp-rig.js';

after(stopAllAgents);

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ocpp-security-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function listening(t: TestContext, csms: DevCsms): Promise<DevCsms> {
  await csms.listen(0, '127.0.0.1');
  t.after(() => csms.close());
  return csms;
}

/** Polls until the condition holds (bounded). */
async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('OCPP security profiles', () => {
  it('profile 1 logs in with the password from passwordFile, and a wrong password is refused before any message', { timeout: 90_000 }, async (t) => {
    const dir = scratch(t);
    const csms = await listening(t, new DevCsms({ password: 'correct horse' }));
    writeFileSync(join(dir, 'good'), 'correct horse\n');
    writeFileSync(join(dir, 'bad'), 'battery staple\n');
    const cleanup = (fn: () => unknown) => t.after(fn);
    await startAgent({ readyTimeoutMs: 45_000, args: ocppArgs(cleanup, csms, { chargePointId: 'CP-GOOD', securityProfile: 1, passwordFile: join(dir, 'good') }) });
    await csms.waitFor('BootNotification', (m) => m.identity === 'CP-GOOD');
    await startAgent({ readyTimeoutMs: 45_000, args: ocppArgs(cleanup, csms, { chargePointId: 'CP-BAD', securityProfile: 1, passwordFile: join(dir, 'bad') }) });
    await until('the CSMS refuses the wrong password', () => csms.rejectedLogins >= 1);
    assert.equal(csms.received.filter((m) => m.identity === 'CP-BAD').length, 0);
    assertSchemaClean(csms);
  });

  it('profile 2 connects over wss:// trusting the CA in caFile', { timeout: 90_000 }, async (t) => {
    const dir = scratch(t);
    const [cert, key] = [join(dir, 'csms.crt'), join(dir, 'csms.key')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const csms = await listening(t, new DevCsms({ password: 'tls secret', tls: { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') } }));
    writeFileSync(join(dir, 'password'), 'tls secret');
    const args = ocppArgs((fn) => t.after(fn), csms, { url: `wss://127.0.0.1:${csms.port}/ocpp`, securityProfile: 2, passwordFile: join(dir, 'password'), caFile: cert });
    await startAgent({ readyTimeoutMs: 45_000, args });
    const boot = await csms.waitFor('BootNotification');
    assert.equal(boot.identity, 'CP-001');
    await csms.waitFor('StatusNotification');
    assertSchemaClean(csms);
  });
});
