// The real `charger-agent run --hardware sim` process, driven through `charger-agent ctl`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, agentCommand, startAgent, stopAllAgents } from './support/agent-process.js';

const exec = promisify(execFile);

/** Runs the CLI as a person would; resolves with its exit code and output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [...agentCommand(), ...args], { cwd: REPO_ROOT, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

after(stopAllAgents);

describe('charger-agent run on simulated hardware', () => {
  it('runs a full session driven through ctl: authorize, plug, charge with rising kWh, unplug', async () => {
    const agent = await startAgent();
    const port = String(agent.healthPort);
    assert.deepEqual(await cli('ctl', '--port', port, 'status'), { code: 0, stdout: 'OK\n', stderr: '' });
    const authorized = await cli('ctl', '--port', port, 'authorize', 'DRIVER-42');
    assert.equal(authorized.stdout, 'ACK#AUTORIZAR_SUMINISTRO\n');
    assert.equal((await agent.info()).state, 'Authorized');
    assert.equal((await cli('ctl', '--port', port, 'plug')).code, 0);

    const first = await agent.until((info) => info.state === 'Charging' && (info.session?.kwh ?? 0) > 0);
    const later = await agent.until((info) => (info.session?.kwh ?? 0) > first.session!.kwh);
    assert.equal(later.relay.commanded, 'closed');
    assert.equal(later.relay.feedback, 'closed');
    assert.ok(later.session!.importe > 0, 'cost rises with the energy');
    assert.equal(later.session!.driver, 'DRIVER-42');

    assert.equal((await cli('ctl', '--port', port, 'unplug')).code, 0);
    const ended = await agent.waitFor('session_ended');
    assert.equal(ended.reason, 'unplugged');
    assert.ok(Number(ended.kwh) >= later.session!.kwh);
    const idle = await agent.until((info) => info.state === 'Available');
    assert.equal(idle.relay.commanded, 'open');
    assert.equal(idle.session, null);
  });

  it('a fault mid-charge opens the relay and STATUS? answers KO until recover', async () => {
    const agent = await startAgent();
    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#D1'), 'ACK#AUTORIZAR_SUMINISTRO');
    assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
    await agent.until((info) => info.state === 'Charging');
    assert.equal(await agent.send('SIM#FAULT'), 'ACK#SIM#FAULT');
    const faulted = await agent.info();
    assert.equal(faulted.state, 'Faulted');
    assert.equal(faulted.relay.commanded, 'open');
    assert.equal(await agent.send('STATUS?'), 'KO');
    assert.equal(await agent.send('HEALTH_CHECK'), 'KO');
    assert.equal((await agent.waitFor('session_ended')).reason, 'fault');
    assert.equal((await cli('ctl', '--port', String(agent.healthPort), 'status')).code, 1, 'ctl exits 1 on KO');
    assert.equal(await agent.send('SIM#RECOVER'), 'ACK#SIM#RECOVER');
    assert.equal(await agent.send('STATUS?'), 'OK');
    assert.equal((await agent.info()).state, 'Available', 'plugged still, but the session does not resume');
  });

  it('PARAR puts it out of service (not a fault) and REANUDAR brings it back', async () => {
    const agent = await startAgent();
    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#D1'), 'ACK#AUTORIZAR_SUMINISTRO');
    await agent.send('SIM#PLUG');
    await agent.until((info) => info.state === 'Charging');
    assert.equal(await agent.send('PARAR'), 'ACK#PARAR');
    assert.equal((await agent.waitFor('session_ended')).reason, 'stopped_by_central');
    await agent.until((info) => info.state === 'Unavailable');
    assert.equal(await agent.send('STATUS?'), 'OK');
    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#D2'), 'NACK#AUTORIZAR_SUMINISTRO#UNAVAILABLE');
    assert.equal(await agent.send('REANUDAR'), 'ACK#REANUDAR');
    assert.equal((await agent.info()).state, 'Available');
    await agent.send('SIM#ESTOP#ON');
    assert.equal(await agent.send('PARAR'), 'ACK#PARAR');
    assert.equal(await agent.send('REANUDAR'), 'NACK#REANUDAR#FAULTED');
  });

  it('answers unknown commands, bad driver ids and a busy charge point with a NACK', async () => {
    const agent = await startAgent();
    assert.equal(await agent.send('HELLO'), 'NACK#UNKNOWN_COMMAND');
    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#bad id'), 'NACK#AUTORIZAR_SUMINISTRO#BAD_ID');
    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#D1'), 'ACK#AUTORIZAR_SUMINISTRO');
    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#D2'), 'NACK#AUTORIZAR_SUMINISTRO#BUSY');
    assert.equal(await agent.send('SIM#WARP#9'), 'NACK#SIM#UNKNOWN_INJECTION');
    const unknown = await cli('ctl', '--port', String(agent.healthPort), 'HELLO');
    assert.deepEqual([unknown.code, unknown.stdout], [1, 'NACK#UNKNOWN_COMMAND\n']);
  });

  it('SIGTERM mid-charge opens the relay, ends the session with reason shutdown and exits 0', async () => {
    const agent = await startAgent();
    await agent.send('AUTORIZAR_SUMINISTRO#D1');
    await agent.send('SIM#PLUG');
    await agent.until((info) => info.state === 'Charging' && (info.session?.kwh ?? 0) > 0);
    agent.kill('SIGTERM');
    const { code, signal } = await agent.exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    const opened = agent.lines.findIndex((l) => l.event === 'relay_command' && l.relay === 'open');
    const ended = agent.lines.findIndex((l) => l.event === 'session_ended');
    assert.ok(opened !== -1 && opened < ended, 'the relay opens before the session is reported ended');
    assert.equal(agent.lines[ended]!.reason, 'shutdown');
    const ledger = await cli('sessions', '--json', '--state-dir', agent.stateDir);
    assert.equal(ledger.code, 0, ledger.stderr);
    const sessions = JSON.parse(ledger.stdout) as Array<{ end_reason?: string; endReason?: string; reason?: string }>;
    assert.equal(sessions.length, 1);
    assert.match(JSON.stringify(sessions[0]), /"shutdown"/);
  });
});

describe('charger-agent CLI', () => {
  it('reports every error of a bad config file at once and exits 78', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'charger-badconfig-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'cpId: CP-1\nhealth:\n  port: 99999\n  hots: x\nmeter:\n  baud: fast\nkafak: {}\n');
    const result = await cli('run', '--config', file, '--state-dir', dir);
    assert.equal(result.code, 78);
    const problems = result.stdout.split('\n').filter((line) => line.includes('"problem"'));
    assert.equal(problems.length, 4, result.stdout);
    for (const path of ['health.port', 'health: unknown setting \\"hots\\"', 'meter.baud', 'unknown setting \\"kafak\\"']) {
      assert.ok(problems.some((line) => line.includes(path)), `${path} reported`);
    }
  });

  it('--hardware pi exits 1 when GPIO cannot be reached (systemd retries), and 78 when a pin is missing from the config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'charger-gpio-exit-'));
    const pins = '  relay: { sysfs: 1 }\n  plugPresent: { sysfs: 2 }\n';
    const unreachable = join(dir, 'unreachable.yaml');
    writeFileSync(unreachable, `hardware: pi\ngpio:\n  sysfsRoot: ${join(dir, 'no-gpio')}\n${pins}  emergencyStop: { sysfs: 3 }\n`);
    const down = await cli('run', '--config', unreachable, '--state-dir', dir, '--health-port', '0', '--http-port', '0');
    assert.equal(down.code, 1, down.stdout);
    assert.match(down.stdout, /"event":"hardware_unavailable".*"code":"GPIO_UNAVAILABLE".*"exit":1/);
    const incomplete = join(dir, 'incomplete.yaml');
    writeFileSync(incomplete, `hardware: pi\ngpio:\n  sysfsRoot: ${join(dir, 'no-gpio')}\n${pins}`);
    const misconfigured = await cli('run', '--config', incomplete, '--state-dir', dir, '--health-port', '0', '--http-port', '0');
    assert.equal(misconfigured.code, 78, misconfigured.stdout);
    assert.match(misconfigured.stdout, /"code":"GPIO_CONFIG".*gpio\.emergencyStop/);
  });

  it('rejects an unknown flag with a usage error (exit 2)', async () => {
    const result = await cli('run', '--helth-port', '1');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /helth-port/);
  });

  it('prints help for every command and lists them all at the top level', async () => {
    const top = await cli('--help');
    assert.equal(top.code, 0);
    for (const command of ['run', 'ctl', 'monitor', 'sessions', 'diagnose', 'meter-sim']) {
      assert.match(top.stdout, new RegExp(`^  ${command} `, 'm'), `${command} listed`);
      const help = await cli(command, '--help');
      assert.equal(help.code, 0, `${command} --help: ${help.stderr}`);
      assert.match(help.stdout, /Usage/i);
    }
  });

  it('ctl exits 1 with a clear message when no agent listens', async () => {
    const result = await cli('ctl', '--port', '1', 'status');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot reach the agent at 127\.0\.0\.1:1/);
  });
});
