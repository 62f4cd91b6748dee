import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { createTransportPair } from './testing/memory-transport.js';
import { applyControl, startControlServer } from './sim-control.js';
import { MeterSimulator } from './simulator.js';

const newSim = () => new MeterSimulator({ transport: createTransportPair()[1] });

test('control lines change the behaviour and answer OK', () => {
  const sim = newSim();
  assert.equal(applyControl(sim, 'silent on'), 'OK');
  assert.equal(applyControl(sim, 'power 11000'), 'OK');
  assert.equal(applyControl(sim, 'corrupt 0.05'), 'OK');
  assert.equal(applyControl(sim, 'drop 0.02'), 'OK');
  assert.equal(applyControl(sim, 'delay 40'), 'OK');
  assert.equal(applyControl(sim, 'exception 4'), 'OK');
  assert.deepEqual(sim.behaviour(), {
    powerW: 11_000,
    corruptShare: 0.05,
    dropShare: 0.02,
    noiseShare: 0,
    splitShare: 0,
    delayMs: 40,
    silent: true,
    exceptionCode: 4,
  });
  assert.equal(applyControl(sim, 'exception off'), 'OK');
  assert.equal(applyControl(sim, '  silent off '), 'OK');
  assert.equal(sim.behaviour().exceptionCode, 0);
  assert.equal(sim.behaviour().silent, false);
});

test('bad control lines are refused with a reason and change nothing', () => {
  const sim = newSim();
  assert.match(applyControl(sim, 'corrupt 5'), /^ERR corrupt takes a share/);
  assert.match(applyControl(sim, 'power'), /^ERR power takes watts/);
  assert.match(applyControl(sim, 'exception 2.5'), /^ERR/);
  assert.match(applyControl(sim, 'explode'), /^ERR unknown command "explode"/);
  assert.equal(sim.behaviour().corruptShare, 0);
});

test('truth answers one line of JSON with the values served', () => {
  const sim = newSim();
  applyControl(sim, 'power 0'); // nothing drawn: the register holds still between the two lines
  applyControl(sim, 'import 99.5');
  const truth = JSON.parse(applyControl(sim, 'truth'));
  assert.equal(truth.model, 'sdm630');
  assert.equal(truth.values.importKwh, 99.5);
  assert.equal(truth.registers['0x0048'], 99.5);
});

test('the control port takes lines over loopback TCP', async () => {
  const sim = newSim();
  const server = await startControlServer(sim, 0);
  try {
    const socket = connect(server.port, '127.0.0.1');
    socket.setEncoding('utf8');
    await once(socket, 'connect');
    socket.write('power 3700\nbehaviour\n');
    let received = '';
    while (received.split('\n').length < 3) received += (await once(socket, 'data'))[0];
    const [ok, behaviour] = received.split('\n');
    assert.equal(ok, 'OK');
    assert.equal(JSON.parse(behaviour!).powerW, 3700);
    socket.destroy();
  } finally {
    await server.close();
  }
});
