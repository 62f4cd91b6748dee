// HTTP /health and /metrics on the real agent (`charger-agent run --hardware sim --http-port P`):
// the status codes follow the agent's state, and /metrics passes promtool.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { assertPromtoolClean } from '../agent/http/testing/promtool-check.js';
import { startAgent, stopAllAgents, type AgentProcess } from './support/agent-process.js';

after(stopAllAgents);

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function agentWithHttp(): Promise<{ agent: AgentProcess; base: string }> {
  const httpPort = await freePort();
  const agent = await startAgent({ args: ['--http-host', '127.0.0.1', '--http-port', String(httpPort), '--cp-id', 'CP-HTTP-1'] });
  return { agent, base: `http://127.0.0.1:${httpPort}` };
}

async function health(base: string): Promise<{ code: number; body: Record<string, any> }> {
  const res = await fetch(`${base}/health`);
  return { code: res.status, body: (await res.json()) as Record<string, any> };
}

/** /health until the predicate holds: the meter's first readings take a moment after agent_ready. */
async function healthUntil(base: string, predicate: (h: { code: number; body: Record<string, any> }) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last = await health(base);
  while (!predicate(last) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await health(base);
  }
  assert.ok(predicate(last), `condition not reached; last /health ${last.code} ${JSON.stringify(last.body)}`);
  return last;
}

describe('HTTP on the real agent', () => {
  it('GET /health: 200 ok on a healthy idle agent, 503 fault while faulted, 200 again after recover', async () => {
    const { agent, base } = await agentWithHttp();
    const ok = await healthUntil(base, (h) => h.body.status === 'ok');
    assert.equal(ok.code, 200);
    assert.equal(ok.body.cp_id, 'CP-HTTP-1');
    assert.equal(ok.body.state, 'Available');
    assert.deepEqual(ok.body.kafka, { enabled: false, connected: false, last_error: null });
    assert.equal(typeof ok.body.uptime_seconds, 'number');
    assert.equal(typeof ok.body.version, 'string');

    assert.equal(await agent.send('SIM#FAULT'), 'ACK#SIM#FAULT');
    const fault = await health(base);
    assert.equal(fault.code, 503);
    assert.equal(fault.body.status, 'fault');
    assert.equal(fault.body.state, 'Faulted');
    assert.ok(fault.body.faults.length >= 1);

    assert.equal(await agent.send('SIM#RECOVER'), 'ACK#SIM#RECOVER');
    await healthUntil(base, (h) => h.code === 200);
  });

  it('GET /health: 200 degraded when the meter stops answering', async () => {
    const { agent, base } = await agentWithHttp();
    await healthUntil(base, (h) => h.body.status === 'ok');
    assert.equal(await agent.send('SIM#METER#SILENT'), 'ACK#SIM#METER#SILENT');
    const degraded = await healthUntil(base, (h) => h.body.status === 'degraded', 30_000);
    assert.equal(degraded.code, 200);
    assert.ok(degraded.body.reasons.some((reason: string) => reason.startsWith('meter ')));
  });

  it('GET /metrics passes promtool and counts the health checks it answered', async (t) => {
    const { agent, base } = await agentWithHttp();
    for (let i = 0; i < 3; i += 1) assert.equal(await agent.send('STATUS?'), 'OK');
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^charger_charging_state\{state="Available"\} 1$/m);
    const okChecks = Number(/^charger_health_checks_total\{result="ok"\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(okChecks >= 3, `health checks ok = ${okChecks}`);
    assert.match(text, /^process_resident_memory_bytes \d+/m);

    await assertPromtoolClean(t, text);
  });

  it('answers 404 and 405 and stays up', async () => {
    const { base } = await agentWithHttp();
    assert.equal((await fetch(`${base}/`)).status, 404);
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.ok([200, 503].includes((await fetch(`${base}/health`)).status), 'still serving /health');
  });
});
