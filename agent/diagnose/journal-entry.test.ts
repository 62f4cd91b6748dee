import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEventLine, parseJournalLine, parseJournalRecord } from './journal-entry.js';

const TIME_US = '1767441600123456';

describe('journal entries', () => {
  it("read one of the agent's lines: event, fields and the priority journald took from <N>", () => {
    const entry = parseJournalRecord({
      __REALTIME_TIMESTAMP: TIME_US,
      PRIORITY: '4',
      MESSAGE: '{"event":"meter_down","unit":1,"path":"/dev/ttyUSB0"}',
      _SYSTEMD_UNIT: 'charger-agent.service',
      _PID: '812',
      _BOOT_ID: 'b1',
    });
    assert.deepEqual(entry, {
      timeMs: 1767441600123,
      unit: 'charger-agent.service',
      source: 'app',
      priority: 4,
      message: '{"event":"meter_down","unit":1,"path":"/dev/ttyUSB0"}',
      event: 'meter_down',
      fields: { unit: 1, path: '/dev/ttyUSB0' },
      pid: 812,
      bootId: 'b1',
    });
  });

  it("read PID 1's messages as the manager's, about the unit in UNIT=", () => {
    const entry = parseJournalRecord({
      __REALTIME_TIMESTAMP: TIME_US,
      PRIORITY: '3',
      MESSAGE: 'charger-agent.service: Watchdog timeout (limit 10s)!',
      UNIT: 'charger-agent.service',
      _SYSTEMD_UNIT: 'init.scope',
      _PID: '1',
    });
    assert.equal(entry?.source, 'manager');
    assert.equal(entry?.unit, 'charger-agent.service');
    assert.equal(entry?.event, undefined);
  });

  it('take the unit from the message when PID 1 left UNIT= out', () => {
    const entry = parseJournalRecord({ __REALTIME_TIMESTAMP: TIME_US, MESSAGE: "charger-monitor.service: Failed with result 'exit-code'.", _PID: '1' });
    assert.equal(entry?.unit, 'charger-monitor.service');
  });

  it('decode a MESSAGE that journalctl gives as bytes', () => {
    const bytes = [...Buffer.from('{"event":"kafka_down","error":"caf\u00e9"}')];
    const entry = parseJournalRecord({ __REALTIME_TIMESTAMP: TIME_US, MESSAGE: bytes, _SYSTEMD_UNIT: 'charger-agent.service' });
    assert.equal(entry?.event, 'kafka_down');
    assert.equal(entry?.fields.error, 'caf\u00e9');
  });

  it('keep lines that are not our events, without an event name', () => {
    const entry = parseJournalRecord({ __REALTIME_TIMESTAMP: TIME_US, MESSAGE: 'node: warning: something', _SYSTEMD_UNIT: 'charger-agent.service' });
    assert.equal(entry?.event, undefined);
    assert.equal(entry?.priority, 6);
  });

  it('tolerate a <N> prefix that journald did not strip', () => {
    assert.deepEqual(parseEventLine('<2>{"event":"fault_raised","fault":"relay_welded"}'), { priority: 2, event: 'fault_raised', fields: { fault: 'relay_welded' } });
    assert.equal(parseEventLine('{"event":'), undefined);
    assert.equal(parseEventLine('{"event":42}'), undefined);
  });

  it('skip blank, foreign and timeless lines', () => {
    assert.equal(parseJournalLine(''), undefined);
    assert.equal(parseJournalLine('-- No entries --'), undefined);
    assert.equal(parseJournalLine('{"MESSAGE":"no time"}'), undefined);
    assert.equal(parseJournalLine(`{"MESSAGE":"x","__REALTIME_TIMESTAMP":"${TIME_US}"}`)?.message, 'x');
  });
});
