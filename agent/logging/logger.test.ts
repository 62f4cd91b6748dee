import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, formatLine } from './logger.js';

function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: string[] = [];
  return { lines, log: createLogger({ pretty: false, level: 'debug', ...options, write: (line) => lines.push(line) }) };
}

describe('journald logger', () => {
  it('writes one line per event with the syslog priority prefix and JSON fields', () => {
    const { lines, log } = capture();
    log.warning('meter_down', { unit: 1, code: 'METER_TIMEOUT' });
    log.crit('fault_raised', { fault: 'relay_welded' });
    assert.deepEqual(lines, ['<4>{"event":"meter_down","unit":1,"code":"METER_TIMEOUT"}', '<2>{"event":"fault_raised","fault":"relay_welded"}']);
  });

  it('never writes a secret, whatever the field is called', () => {
    const { lines, log } = capture();
    log.info('kafka_config', { password: 'hunter2', saslPassword: 'x', apiKey: 'k', token: 't', user: 'cp-1' });
    assert.doesNotMatch(lines[0]!, /hunter2|"x"|"k"|"t"/);
    assert.match(lines[0]!, /"user":"cp-1"/);
  });

  it('keeps a multi-line error on one line', () => {
    const { lines, log } = capture();
    log.err('unhandled_error', { error: new Error('first\nsecond') });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.includes('\n'), false);
  });

  it('drops events below the level', () => {
    const { lines, log } = capture({ level: 'notice' });
    log.info('consumo');
    log.debug('consumo');
    log.notice('agent_ready');
    assert.equal(lines.length, 1);
  });

  it('adds a child logger\'s fields to every line', () => {
    const { lines, log } = capture();
    log.child({ component: 'monitor' }).info('monitor_started', { port: 5001 });
    assert.equal(lines[0], '<6>{"event":"monitor_started","component":"monitor","port":5001}');
  });

  it('reads like a sentence on a terminal, with no prefix', () => {
    const line = formatLine('warning', 'meter_down', { unit: 1, path: '/dev/ttyUSB0', reason: 'no answer' }, true);
    assert.match(line, /^\d\d:\d\d:\d\d warning meter_down unit=1 path=\/dev\/ttyUSB0 reason="no answer"$/);
  });
});
