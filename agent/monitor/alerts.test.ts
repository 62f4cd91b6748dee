import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { decideAlert, initialAlertPolicy, redactUrl, WebhookAlerter, type AlertPayload, type WebhookConfig } from './alerts.js';
import type { MonitorMessage } from './monitor-core.js';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function monitorMessage(action: MonitorMessage['action'], extra: Partial<MonitorMessage> = {}): MonitorMessage {
  return {
    cp_id: 'CP-001',
    monitor_id: 'monitor-1',
    action,
    status: action === 'engine_recovered' ? 'OK' : 'TIMEOUT',
    engine_response: action === 'engine_recovered' ? 'OK' : 'TIMEOUT',
    consecutive_failures: action === 'engine_recovered' ? 0 : 3,
    timestamp: T0 / 1000,
    time: new Date(T0).toISOString(),
    message_id: 'm-1',
    failure_type: 'TIMEOUT',
    outage_ms: 12_000,
    outage_started_at: new Date(T0 - 2000).toISOString(),
    ...extra,
  };
}
const failure = (extra: Partial<MonitorMessage> = {}) => monitorMessage('report_engine_failure', extra);
const recovery = () => monitorMessage('engine_recovered');

describe('alert policy', () => {
  it('alerts on the first failure and on its recovery', () => {
    const first = decideAlert(initialAlertPolicy, failure(), T0, 60_000);
    assert.equal(first.alert?.alert, 'engine_failure');
    assert.match(first.alert!.text, /^CP-001: engine failure \(TIMEOUT, 3 consecutive failed checks by monitor-1\)/);
    const second = decideAlert(first.state, recovery(), T0 + 5000, 60_000);
    assert.equal(second.alert?.alert, 'engine_recovered');
    assert.equal(second.alert!.text, 'CP-001: engine recovered after 12 s (TIMEOUT)');
  });

  it('never alerts twice for one outage', () => {
    const first = decideAlert(initialAlertPolicy, failure(), T0, 0);
    const again = decideAlert(first.state, failure(), T0 + 120_000, 0);
    assert.equal(again.alert, undefined);
  });

  it('an outage sooner than minIntervalMs after the last alert is counted, not alerted, and so is its recovery', () => {
    let step = decideAlert(initialAlertPolicy, failure(), T0, 60_000);
    step = decideAlert(step.state, recovery(), T0 + 1000, 60_000);
    step = decideAlert(step.state, failure(), T0 + 2000, 60_000);
    assert.equal(step.alert, undefined);
    assert.equal(step.state.suppressedOutages, 1);
    step = decideAlert(step.state, recovery(), T0 + 3000, 60_000);
    assert.equal(step.alert, undefined);
    step = decideAlert(step.state, failure(), T0 + 61_000, 60_000);
    assert.equal(step.alert?.alert, 'engine_failure');
    assert.equal(step.alert!.suppressed_outages, 1, 'the next alert says how many outages went unannounced');
  });

  it('health checks and registrations are never alerts', () => {
    for (const action of ['health_check', 'register_to_central'] as const) {
      assert.equal(decideAlert(initialAlertPolicy, monitorMessage(action), T0, 0).alert, undefined);
    }
  });

  it('logs only the origin of a webhook URL, which may carry a token', () => {
    assert.equal(redactUrl('https://hooks.example.com/services/T000/B000/SECRET?token=x'), 'https://hooks.example.com');
  });
});

// ---------------------------------------------------------------- against a local HTTP server

interface Gateway {
  server: Server;
  url: string;
  received: AlertPayload[];
}

const gateways: Server[] = [];
after(async () => {
  await Promise.all(gateways.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A webhook gateway on loopback; `answer` decides each response (default 204). */
async function gateway(answer: (req: IncomingMessage, res: ServerResponse, n: number) => void = (_, res) => res.writeHead(204).end(), port = 0): Promise<Gateway> {
  const received: AlertPayload[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/json');
    received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertPayload);
    answer(req, res, received.length);
  });
  gateways.push(server);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, received, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/monitor` };
}

function alerter(url: string, extra: Partial<WebhookConfig> = {}) {
  const log = createMemoryLogger();
  const config: WebhookConfig = { url, timeoutMs: 2000, retries: 3, backoffInitialMs: 10, backoffMaxMs: 50, minIntervalMs: 0, ...extra };
  // Each retry waits half its step: fixed waits, whatever Math.random would say.
  return { alerts: new WebhookAlerter(config, { log, random: () => 0.5 }), log };
}

describe('webhook alerter', () => {
  it('POSTs the failure and then the recovery as JSON, in order', async () => {
    const hook = await gateway();
    const { alerts, log } = alerter(hook.url);
    alerts.handle(failure());
    alerts.handle(recovery());
    await once(alerts, 'delivered');
    await once(alerts, 'delivered');
    assert.deepEqual(hook.received.map((a) => [a.alert, a.action, a.cp_id, a.failure_type]), [
      ['engine_failure', 'report_engine_failure', 'CP-001', 'TIMEOUT'],
      ['engine_recovered', 'engine_recovered', 'CP-001', 'TIMEOUT'],
    ]);
    assert.equal(log.lines.filter((l) => l.event === 'alert_sent').length, 2);
    assert.ok(log.lines.every((l) => !String(l.fields.webhook).includes('/hooks')), 'the URL path is not logged');
    await alerts.stop();
  });

  it('a gateway that is down and comes back gets the alert', async () => {
    const probe = await gateway();
    const { port } = probe.server.address() as AddressInfo;
    await new Promise((resolve) => probe.server.close(resolve));

    const { alerts } = alerter(probe.url, { backoffInitialMs: 20, retries: 10 });
    alerts.handle(failure());
    const [{ error }] = (await once(alerts, 'attempt_failed')) as [{ error: { message: string } }];
    assert.match(error.message, /WEBHOOK_UNREACHABLE: ECONNREFUSED/);

    const revived = await gateway(undefined, port);
    await once(alerts, 'delivered');
    assert.equal(revived.received.length, 1);
    assert.equal(revived.received[0]!.alert, 'engine_failure');
    await alerts.stop();
  });

  it('retries a gateway error with backoff and delivers once it answers 2xx', async () => {
    const hook = await gateway((_, res, n) => res.writeHead(n < 3 ? 503 : 200).end());
    const { alerts } = alerter(hook.url);
    const failures: number[] = [];
    alerts.on('attempt_failed', ({ attempt }: { attempt: number }) => failures.push(attempt));
    alerts.handle(failure());
    await once(alerts, 'delivered');
    assert.deepEqual(failures, [1, 2]);
    assert.equal(hook.received.length, 3);
    await alerts.stop();
  });

  it('a gateway that does not answer in time is retried', async () => {
    const hook = await gateway((_, res, n) => (n === 1 ? undefined : res.writeHead(200).end()));
    const { alerts } = alerter(hook.url, { timeoutMs: 100 });
    alerts.handle(failure());
    const [{ error }] = (await once(alerts, 'attempt_failed')) as [{ error: { message: string } }];
    assert.match(error.message, /WEBHOOK_TIMEOUT: no answer within 100 ms/);
    await once(alerts, 'delivered');
    assert.equal(hook.received.length, 2);
    hook.server.closeAllConnections();
    await alerts.stop();
  });

  it('gives up after the configured retries and says so in the log', async () => {
    const hook = await gateway((_, res) => res.writeHead(500).end());
    const { alerts, log } = alerter(hook.url, { retries: 2 });
    alerts.handle(failure());
    await once(alerts, 'gave_up');
    assert.equal(hook.received.length, 3);
    const failed = log.lines.find((l) => l.event === 'alert_failed');
    assert.equal(failed?.fields.attempts, 3);
    assert.match(String(failed?.fields.error), /WEBHOOK_HTTP_500/);
    await alerts.stop();
  });

  it('does not retry a body the gateway rejects (4xx)', async () => {
    const hook = await gateway((_, res) => res.writeHead(400).end());
    const { alerts } = alerter(hook.url);
    alerts.handle(failure());
    await once(alerts, 'gave_up');
    assert.equal(hook.received.length, 1);
    await alerts.stop();
  });

  it('one outage reported twice gets one alert; a flapping engine within minIntervalMs gets none', async () => {
    const hook = await gateway();
    const { alerts } = alerter(hook.url, { minIntervalMs: 3_600_000 });
    alerts.handle(failure());
    alerts.handle(failure());
    await once(alerts, 'delivered');
    alerts.handle(recovery());
    await once(alerts, 'delivered');
    const suppressed = once(alerts, 'suppressed');
    alerts.handle(failure());
    await suppressed;
    alerts.handle(recovery());
    await alerts.stop();
    assert.deepEqual(hook.received.map((a) => a.alert), ['engine_failure', 'engine_recovered']);
  });

  // The next retry is an hour away: a stop() that waited for it fails on this test's own timeout.
  it('stop abandons the retries of an unreachable gateway at once, says so, and takes no new alert', { timeout: 10_000 }, async () => {
    const probe = await gateway();
    await new Promise((resolve) => probe.server.close(resolve));
    const { alerts, log } = alerter(probe.url, { retries: 5, backoffInitialMs: 3_600_000, backoffMaxMs: 3_600_000 });
    const attempts: number[] = [];
    alerts.on('attempt_failed', ({ attempt }: { attempt: number }) => attempts.push(attempt));
    const gaveUp = once(alerts, 'gave_up');
    alerts.handle(failure());
    await once(alerts, 'attempt_failed');
    await alerts.stop();
    const [abandoned] = (await gaveUp) as [AlertPayload];
    assert.equal(abandoned.alert, 'engine_failure');
    assert.ok(attempts.length < 6, `gave up after ${attempts.length} of 6 attempts`);
    const failed = log.lines.filter((l) => l.event === 'alert_failed');
    assert.equal(failed.length, 1, 'the abandoned alert is logged once');
    assert.equal(failed[0]!.fields.attempts, attempts.length);
    alerts.handle(recovery());
    alerts.handle(failure());
    await alerts.stop(); // waits for any delivery those two could have started
    assert.equal(attempts.length, failed[0]!.fields.attempts, 'a stopped alerter sends nothing more');
  });
});
