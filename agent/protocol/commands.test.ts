import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changesState, isPositive, parseRequest } from './commands.js';

describe('protocol lines', () => {
  it('parses every line of the protocol', () => {
    assert.deepEqual(parseRequest('STATUS?'), { kind: 'status' });
    assert.deepEqual(parseRequest('HEALTH_CHECK'), { kind: 'status' });
    assert.deepEqual(parseRequest('INFO'), { kind: 'info' });
    assert.deepEqual(parseRequest('PARAR'), { kind: 'stop' });
    assert.deepEqual(parseRequest('REANUDAR'), { kind: 'resume' });
    assert.deepEqual(parseRequest('RESET'), { kind: 'reset' });
    assert.deepEqual(parseRequest('AUTORIZAR_SUMINISTRO#DRIVER-42'), { kind: 'authorize', driverId: 'DRIVER-42' });
    assert.deepEqual(parseRequest('SIM#ESTOP#ON'), { kind: 'sim', injection: 'estop', args: ['on'] });
  });

  it('keeps a driver id with a # whole so the core can refuse it', () => {
    assert.deepEqual(parseRequest('AUTORIZAR_SUMINISTRO#a#b'), { kind: 'authorize', driverId: 'a#b' });
    assert.deepEqual(parseRequest('AUTORIZAR_SUMINISTRO#'), { kind: 'authorize', driverId: '' });
  });

  it('treats anything else as unknown, including lower case and a bare AUTORIZAR_SUMINISTRO', () => {
    for (const line of ['', 'status?', 'AUTORIZAR_SUMINISTRO', 'SIM#', 'PARAR NOW', '\u0000\u00ff', 'GET / HTTP/1.1']) {
      assert.deepEqual(parseRequest(line), { kind: 'unknown' }, JSON.stringify(line));
    }
  });

  it('tolerates surrounding blanks', () => {
    assert.deepEqual(parseRequest('  STATUS? \t'), { kind: 'status' });
  });

  it('marks the commands that change the charge point', () => {
    assert.equal(changesState({ kind: 'status' }), false);
    assert.equal(changesState({ kind: 'info' }), false);
    assert.equal(changesState({ kind: 'unknown' }), false);
    assert.equal(changesState({ kind: 'stop' }), true);
    assert.equal(changesState({ kind: 'sim', injection: 'plug', args: [] }), true);
  });

  it('tells positive replies from negative ones', () => {
    assert.equal(isPositive('OK'), true);
    assert.equal(isPositive('ACK#PARAR'), true);
    assert.equal(isPositive('{"state":"Available"}'), true);
    assert.equal(isPositive('KO'), false);
    assert.equal(isPositive('NACK#UNKNOWN_COMMAND'), false);
  });
});
