import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authenticated, encodeMessage, observe, startTracker, type EngineStatus, type MonitorMessage, type ProbeResult, type TrackerConfig, type TrackerState } from './monitor-core.js';

const config: TrackerConfig = { cpId: 'CP-001', monitorId: 'monitor-1', failureThreshold: 3, summaryEveryMs: 0, hasCentral: true };
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

const ANSWERS: Record<EngineStatus, string | null> = { OK: 'OK', KO: 'KO', TIMEOUT: null, CONNECTION_ERROR: null };
/** engine_response as the original sent it: the engine's line, else the failure word. */
const RESPONSES: Record<EngineStatus, string> = { OK: 'OK', KO: 'KO', TIMEOUT: 'TIMEOUT', CONNECTION_ERROR: 'CONNECTION_ERROR' };

function result(status: EngineStatus): ProbeResult {
  return { status, engineResponse: ANSWERS[status] };
}

/** Feeds one probe result a second, from T0 + 1 s; returns every message with the final state. */
function run(statuses: EngineStatus[], cfg: TrackerConfig = config): { state: TrackerState; messages: MonitorMessage[] } {
  let { state, messages } = startTracker(cfg, T0);
  const all = [...messages];
  statuses.forEach((status, i) => {
    ({ state, messages } = observe(cfg, state, result(status), T0 + (i + 1) * 1000));
    all.push(...messages);
  });
  return { state, messages: all };
}

const actions = (messages: MonitorMessage[]) => messages.map((m) => m.action);

describe('monitor core', () => {
  it('announces itself to the central system at start with the fields it reads today, in their original types', () => {
    const { messages } = startTracker(config, T0 + 125);
    assert.equal(messages.length, 1);
    const [register] = messages;
    assert.deepEqual(
      { ...register, message_id: undefined },
      {
        cp_id: 'CP-001',
        monitor_id: 'monitor-1',
        action: 'register_to_central',
        status: 'REGISTERING',
        engine_status: 'UNKNOWN',
        engine_response: '',
        consecutive_failures: 0,
        timestamp: T0 / 1000 + 0.125,
        time: '2025-01-01T12:00:00.125Z',
        message_id: undefined,
      },
    );
    assert.match(register!.message_id, /^[0-9a-f-]{36}$/);
  });

  it('says in the registration status when no central system is configured', () => {
    const [register] = startTracker({ ...config, hasCentral: false }, T0).messages;
    assert.equal(register!.status, 'NO_CENTRAL');
  });

  it('authenticated_with_central carries the engine as last probed', () => {
    const { state } = run(['KO']);
    const message = authenticated(config, state, T0 + 5000);
    assert.deepEqual([message.action, message.status, message.engine_status, message.engine_response], ['authenticated_with_central', 'AUTHENTICATED', 'KO', 'KO']);
  });

  it('writes timestamp with a fractional part even on a whole second', () => {
    const [register] = startTracker(config, T0).messages;
    const json = encodeMessage(register!);
    assert.match(json, /"timestamp":1735732800\.0,/);
    assert.equal(JSON.parse(json).timestamp, T0 / 1000);
    const [later] = startTracker(config, T0 + 5).messages;
    assert.match(encodeMessage(later!), /"timestamp":1735732800\.005,/);
  });

  it('sends a health_check on every status change and nothing while the status holds', () => {
    const { messages } = run(['OK', 'OK', 'OK', 'KO', 'OK', 'OK']);
    const checks = messages.filter((m) => m.action === 'health_check');
    assert.deepEqual(
      checks.map((m) => [m.previous_status, m.status, m.reason]),
      [
        ['UNKNOWN', 'OK', 'change'],
        ['OK', 'KO', 'change'],
        ['KO', 'OK', 'change'],
      ],
    );
  });

  it('reports an engine failure after exactly failureThreshold consecutive failures', () => {
    const two = run(['OK', 'CONNECTION_ERROR', 'CONNECTION_ERROR']);
    assert.ok(!actions(two.messages).includes('report_engine_failure'));
    const three = run(['OK', 'CONNECTION_ERROR', 'CONNECTION_ERROR', 'CONNECTION_ERROR']);
    const reports = three.messages.filter((m) => m.action === 'report_engine_failure');
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.consecutive_failures, 3);
    assert.equal(reports[0]!.failure_type, 'CONNECTION_ERROR');
    assert.equal(reports[0]!.event_type, 'ENGINE_FAILURE');
    assert.equal(reports[0]!.timestamp, (T0 + 4000) / 1000);
    assert.equal(reports[0]!.outage_started_at, new Date(T0 + 2000).toISOString());
    assert.equal(reports[0]!.outage_ms, 2000);
  });

  it('reports once per outage however long it lasts', () => {
    const { messages, state } = run(['OK', ...Array<EngineStatus>(50).fill('TIMEOUT')]);
    assert.equal(messages.filter((m) => m.action === 'report_engine_failure').length, 1);
    assert.equal(state.consecutiveFailures, 50);
  });

  it('a failure streak broken by one OK starts counting again', () => {
    const { messages } = run(['KO', 'KO', 'OK', 'KO', 'KO', 'OK']);
    assert.ok(!actions(messages).includes('report_engine_failure'));
    assert.ok(!actions(messages).includes('engine_recovered'), 'no recovery without a reported outage');
  });

  it('announces recovery with the outage length when OK returns after a reported outage', () => {
    const { messages, state } = run(['OK', 'KO', 'KO', 'KO', 'KO', 'OK']);
    const recovered = messages.filter((m) => m.action === 'engine_recovered');
    assert.equal(recovered.length, 1);
    assert.equal(recovered[0]!.status, 'OK');
    assert.equal(recovered[0]!.engine_response, 'OK');
    assert.equal(recovered[0]!.consecutive_failures, 0);
    assert.equal(recovered[0]!.failure_type, 'KO');
    assert.equal(recovered[0]!.outage_ms, 4000);
    assert.equal(state.outage, undefined);
  });

  it('reports a second outage after a recovery', () => {
    const { messages } = run(['OK', 'KO', 'KO', 'KO', 'OK', 'TIMEOUT', 'TIMEOUT', 'TIMEOUT']);
    const reports = messages.filter((m) => m.action === 'report_engine_failure');
    assert.deepEqual(
      reports.map((m) => m.failure_type),
      ['KO', 'TIMEOUT'],
    );
  });

  for (const failure of ['KO', 'TIMEOUT', 'CONNECTION_ERROR'] as const) {
    it(`reports failure_type ${failure} with the engine's answer`, () => {
      const { messages } = run(['OK', failure, failure, failure]);
      const report = messages.find((m) => m.action === 'report_engine_failure');
      assert.ok(report);
      assert.equal(report.failure_type, failure);
      assert.equal(report.status, failure);
      assert.equal(report.engine_response, RESPONSES[failure]);
    });
  }

  it('mixed failures count together and the report names the latest kind', () => {
    const { messages } = run(['OK', 'TIMEOUT', 'CONNECTION_ERROR', 'CONNECTION_ERROR']);
    const report = messages.find((m) => m.action === 'report_engine_failure');
    assert.ok(report);
    assert.equal(report.consecutive_failures, 3);
    assert.equal(report.failure_type, 'CONNECTION_ERROR');
  });

  it('the recovery names the failure type that was reported, even if the failures changed kind since', () => {
    const { messages } = run(['OK', 'TIMEOUT', 'TIMEOUT', 'TIMEOUT', 'CONNECTION_ERROR', 'OK']);
    const recovered = messages.find((m) => m.action === 'engine_recovered');
    assert.equal(recovered?.failure_type, 'TIMEOUT');
    assert.equal(recovered?.outage_ms, 4000);
  });

  it('a threshold of 1 reports on the first failure', () => {
    const { messages } = run(['OK', 'KO'], { ...config, failureThreshold: 1 });
    assert.deepEqual(actions(messages), ['register_to_central', 'health_check', 'health_check', 'report_engine_failure']);
  });

  it('sends a periodic summary when configured, and none when the status just changed', () => {
    const cfg = { ...config, summaryEveryMs: 3000 };
    const { messages } = run(['OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK'], cfg);
    const checks = messages.filter((m) => m.action === 'health_check');
    assert.deepEqual(
      checks.map((m) => [m.reason, m.time]),
      [
        ['change', new Date(T0 + 1000).toISOString()],
        ['summary', new Date(T0 + 4000).toISOString()],
        ['summary', new Date(T0 + 7000).toISOString()],
      ],
    );
  });

  it('does not change the state it was given', () => {
    const { state } = startTracker(config, T0);
    const frozen = structuredClone(state);
    observe(config, state, result('KO'), T0 + 1000);
    assert.deepEqual(state, frozen);
  });
});
