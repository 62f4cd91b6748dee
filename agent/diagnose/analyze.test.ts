import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeJournal, formatDuration, qosClassOf, type DiagnoseReport } from './analyze.js';
import type { DiagnoseEntry } from './journal-entry.js';

const AGENT = 'charger-agent.service';
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const s = 1000;

const app = (atS: number, event: string, fields: Record<string, unknown> = {}, unit = AGENT): DiagnoseEntry => ({
  timeMs: T0 + atS * s,
  unit,
  source: 'app',
  priority: 6,
  message: JSON.stringify({ event, ...fields }),
  event,
  fields,
});

const pid1 = (atS: number, message: string, unit = AGENT): DiagnoseEntry => ({
  timeMs: T0 + atS * s,
  unit,
  source: 'manager',
  priority: 6,
  message: message.startsWith('Started ') ? message : `${unit}: ${message}`,
  fields: {},
});

const kinds = (report: DiagnoseReport) => report.problems.map((problem) => `${problem.kind}:${problem.severity}:${problem.count}`);

describe('analyzeJournal', () => {
  it('finds nothing wrong in a clean start and stop', () => {
    const report = analyzeJournal([
      pid1(0, 'Started EV charge-point controller (charger-agent).'),
      app(1, 'agent_started'),
      app(60, 'agent_stopping'),
      pid1(61, 'Main process exited, code=exited, status=0/SUCCESS'),
      pid1(61, 'Deactivated successfully.'),
    ]);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.lifecycle, { starts: 1, restarts: 0, watchdogKills: 0, crashes: 0, incidents: [] });
    assert.deepEqual(report.notes, []);
  });

  it('calls an exit with an error a crash (high), and five of them critical', () => {
    const entries: DiagnoseEntry[] = [];
    for (let i = 0; i < 5; i += 1) {
      const at = i * 30;
      entries.push(
        app(at, 'agent_started'),
        pid1(at + 5, 'Main process exited, code=exited, status=1/FAILURE'),
        pid1(at + 5, "Failed with result 'exit-code'."),
        pid1(at + 15, `Scheduled restart job, restart counter is at ${i + 1}.`),
      );
    }
    const report = analyzeJournal(entries);
    assert.deepEqual(kinds(report), ['crash:critical:5', 'restart:high:5']);
    assert.equal(report.lifecycle.crashes, 5);
    assert.match(report.problems[1]!.evidence[0]!, /restart counter 1 after the agent exited with an error or a signal/);
  });

  it('calls exit 78 a refused configuration, once, though the agent and systemd both report it', () => {
    const report = analyzeJournal([
      app(0, 'config_invalid', { problems: ['meter.baud: expected a number'] }),
      pid1(1, 'Main process exited, code=exited, status=78/CONFIG'),
      pid1(1, "Failed with result 'exit-code'."),
    ]);
    assert.deepEqual(kinds(report), ['config_invalid:critical:1']);
    assert.equal(report.lifecycle.crashes, 0);
  });

  it('calls a hit start limit a restart loop (critical)', () => {
    const report = analyzeJournal([pid1(0, 'Start request repeated too quickly.'), pid1(0, "Failed with result 'start-limit-hit'.")]);
    assert.deepEqual(kinds(report), ['restart_loop:critical:1']);
  });

  it('names the part that stalled before a watchdog kill', () => {
    const report = analyzeJournal([
      app(0, 'agent_started'),
      app(100, 'watchdog_stalled', { stalled: ['meter', 'relay_supervision'], watchdog_ms: 10_000 }),
      pid1(108, 'Watchdog timeout (limit 10s)!'),
      pid1(109, 'Main process exited, code=killed, status=6/ABRT'),
      pid1(109, "Failed with result 'watchdog'."),
    ]);
    assert.deepEqual(kinds(report), ['watchdog_kill:critical:1', 'component_stalled:high:1']);
    assert.match(report.problems[0]!.evidence[0]!, /stalled before: meter, relay_supervision \(8 s earlier\)/);
  });

  it('counts a watchdog kill without the result line, from the timeout alone', () => {
    const report = analyzeJournal([app(0, 'agent_started'), pid1(30, 'Watchdog timeout (limit 10s)!')]);
    assert.deepEqual(kinds(report), ['watchdog_kill:critical:1']);
    assert.equal(report.lifecycle.watchdogKills, 1);
  });

  it('ends outages at the link coming back, at the end of the process, or not at all', () => {
    const report = analyzeJournal([
      app(0, 'agent_started'),
      app(10, 'meter_down'),
      app(40, 'meter_up', { down_ms: 30_000, failures: 30 }),
      app(50, 'kafka_down'),
      app(100, 'agent_started'),
      app(110, 'mqtt_down'),
      app(200, 'agent_ready'),
    ]);
    const ends = [...report.meter.outages, ...report.brokers.outages].map(({ link, durationMs, end }) => `${link} ${durationMs} ${end}`);
    assert.deepEqual(ends, ['meter 30000 up', 'kafka 50000 process_end', 'mqtt 90000 ongoing']);
    assert.equal(report.meter.totalDownMs, 30_000);
    assert.deepEqual(kinds(report), ['meter_outage:high:1', 'broker_outage_kafka:medium:1', 'broker_outage_mqtt:low:1']);
  });

  it('dates an outage that began before the journal from its still-down line', () => {
    const report = analyzeJournal([app(100, 'kafka_still_down', { down_ms: 60_000, failures: 60 }), app(130, 'kafka_up', { down_ms: 90_000, failures: 90 })]);
    assert.deepEqual(report.brokers.outages, [
      { link: 'kafka', unit: AGENT, from: new Date(T0 + 40 * s).toISOString(), to: new Date(T0 + 130 * s).toISOString(), durationMs: 90_000, end: 'up', failures: 90 },
    ]);
  });

  it('turns meter_qos class changes into periods of link quality', () => {
    const report = analyzeJournal([
      app(0, 'agent_started'),
      app(100, 'meter_qos', { qos: 'degraded', previous: 'healthy', success_rate: 0.7 }),
      app(160, 'meter_qos', { qos: 'critical', previous: 'degraded', success_rate: 0.3 }),
      app(400, 'meter_qos', { qos: 'healthy', previous: 'critical', success_rate: 0.9 }),
      app(1000, 'agent_stopped'),
    ]);
    assert.deepEqual(
      report.meter.qos.map(({ qosClass, durationMs, successRate }) => ({ qosClass, durationMs, successRate })),
      [
        { qosClass: 'healthy', durationMs: 100_000, successRate: undefined },
        { qosClass: 'degraded', durationMs: 60_000, successRate: 0.7 },
        { qosClass: 'critical', durationMs: 240_000, successRate: 0.3 },
        { qosClass: 'healthy', durationMs: 600_000, successRate: 0.9 },
      ],
    );
    assert.deepEqual(report.meter.timeInClassMs, { healthy: 700_000, degraded: 60_000, critical: 240_000 });
    assert.deepEqual(kinds(report), ['meter_qos_critical:high:1', 'meter_qos_degraded:medium:1']);
    assert.match(report.problems[0]!.evidence[0]!, /critical for 4 min 0 s, 30% good answers/);
  });

  it('dates the link quality the journal began in from the first change it shows', () => {
    const report = analyzeJournal([app(0, 'session_started'), app(300, 'meter_qos', { qos: 'healthy', previous: 'down', success_rate: 0.95 })]);
    assert.deepEqual(report.meter.qos.map(({ qosClass, durationMs }) => `${qosClass} ${durationMs}`), ['down 300000', 'healthy 0']);
    assert.equal(qosClassOf(0.95), 'healthy');
  });

  it("takes the monitor's engine outage from engine_failure to engine_recovered", () => {
    const monitor = 'charger-monitor.service';
    const report = analyzeJournal([app(0, 'engine_failure', { consecutive_failures: 3 }, monitor), app(12, 'engine_recovered', { outage_ms: 15_000 }, monitor)]);
    assert.deepEqual(kinds(report), ['engine_failure:high:1']);
    assert.match(report.problems[0]!.evidence[0]!, /charger-monitor\.service: engine down for 12 s \(then back\)/);
  });

  it('names an unknown fault code a fault all the same', () => {
    const report = analyzeJournal([app(0, 'fault_raised', { fault: 'overtemperature' })]);
    assert.deepEqual(kinds(report), ['fault_other:high:1']);
    assert.equal(report.faults[0]!.fault, 'overtemperature');
  });

  it('counts dropped telemetry as lost data (high)', () => {
    const report = analyzeJournal([app(0, 'outbox_backlog', { depth: 10_000, oldest_age_ms: 3_600_000 }), app(10, 'outbox_dropped', { type: 'CONSUMO', count: 25, reason: 'store_full' })]);
    assert.deepEqual(kinds(report), ['telemetry_dropped:high:1', 'outbox_backlog:medium:1']);
    assert.equal(report.backlog?.dropped, 25);
    assert.equal(report.backlog?.maxOldestAgeMs, 3_600_000);
  });

  it('calls a relay-safe that could not drive the relay line open critical, and a stalled dead-man output high', () => {
    const report = analyzeJournal([
      app(0, 'heartbeat_gap', { gap_ms: 640, period_ms: 20 }),
      app(5, 'relay_force_open_failed', { service_result: 'signal', exit_status: 'KILL' }),
    ]);
    assert.deepEqual(kinds(report), ['relay_force_open_failed:critical:1', 'heartbeat_stalled:high:1']);
  });

  it('says when systemd messages are missing, and when there is nothing at all', () => {
    assert.match(analyzeJournal([app(0, 'agent_started')]).notes.join(), /no messages from systemd about the units/);
    const empty = analyzeJournal([]);
    assert.equal(empty.period, undefined);
    assert.match(empty.notes.join(), /no journal entries/);
  });
});

describe('report helpers', () => {
  it('class success rates like the meter worker does', () => {
    assert.deepEqual([1, 0.9, 0.89, 0.5, 0.49, 0.01, 0].map(qosClassOf), ['healthy', 'healthy', 'degraded', 'degraded', 'critical', 'critical', 'down']);
  });

  it('write durations a person reads at a glance', () => {
    assert.deepEqual([378, 4_000, 125_000, 7_260_000, 90_000_000].map(formatDuration), ['378 ms', '4 s', '2 min 5 s', '2 h 1 min', '1 d 1 h']);
  });
});
