// The contactor opens whatever the death: the real daemon (--hardware pi drivers on a fake sysfs
// tree) is killed with SIGKILL while it holds the relay line closed; a sysfs line keeps that level,
// so the unit's ExecStopPost command, run exactly as the unit line says (from an install tree without
// node_modules), drives it to the open level and logs relay_forced_open. Plus the command's other
// paths: exporting a line nothing holds, the character device through gpiod's tools, no relay, an
// unreadable config.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeSysfsRoot, PI5_CHIPS } from '../drivers/gpio/testing/fake-sysfs.js';
import { REPO_ROOT, startAgent, stopAllAgents } from './support/agent-process.js';
import { buildInstallTree, type InstallTree } from './support/install-tree.js';

const RP1_BASE = 571;
const RELAY = RP1_BASE + 17;
const PLUG = RP1_BASE + 22;
const ESTOP = RP1_BASE + 23;
const HEARTBEAT = RP1_BASE + 24;

let install: InstallTree;
let scratch: string;

before(() => {
  install = buildInstallTree();
  scratch = mkdtempSync(join(tmpdir(), 'charger-relay-safe-'));
});

after(async () => {
  await stopAllAgents();
  install.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** The unit's ExecStopPost= words, with the installed paths mapped to this test's. */
function execStopPost(configPath: string): string[] {
  const unit = readFileSync(join(REPO_ROOT, 'systemd/charger-agent.service'), 'utf8');
  const lines = unit.split('\n').filter((line) => line.startsWith('ExecStopPost='));
  assert.equal(lines.length, 1, 'the unit has one ExecStopPost= line');
  const words = lines[0]!.slice('ExecStopPost='.length).split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ['/usr/bin/node', '/opt/charger-agent/dist/agent/cli.js']);
  assert.ok(words.includes('/etc/charger-agent/config.yaml'), 'it reads the installed config');
  return words.map((word) =>
    word === '/usr/bin/node' ? process.execPath : word === '/etc/charger-agent/config.yaml' ? configPath : word.replace('/opt/charger-agent', install.root),
  );
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the command from a directory without node_modules, with systemd's ExecStopPost variables. */
function run(words: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const startedMs = performance.now();
  const [command, ...args] = words;
  return new Promise((resolve) => {
    execFile(command!, args, { cwd: scratch, env: { PATH: '/usr/bin:/bin', ...env } }, (error, stdout, stderr) => {
      const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
      resolve({ code, stdout, stderr, ms: performance.now() - startedMs });
    });
  });
}

function logLines(stdout: string): Array<{ priority: number; event: string; [field: string]: unknown }> {
  return stdout
    .split('\n')
    .map((text) => /^<(\d)>(\{.*\})$/.exec(text))
    .filter((match) => match !== null)
    .map((match) => ({ priority: Number(match[1]), ...(JSON.parse(match[2]!) as { event: string }) }));
}

function value(root: string, sysfs: number): string {
  return readFileSync(join(root, `gpio${sysfs}`, 'value'), 'utf8').trim();
}

/** The levels a value file shows over a window, polled every millisecond or so (sorted). */
async function levelsSeen(root: string, sysfs: number, windowMs: number): Promise<string[]> {
  const seen = new Set<string>();
  const until = performance.now() + windowMs;
  while (performance.now() < until && seen.size < 2) {
    const level = value(root, sysfs);
    if (level !== '') seen.add(level);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return [...seen].sort();
}

function writeConfig(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe('the relay line is driven open after the agent dies (ExecStopPost relay-safe)', () => {
  it('after SIGKILL mid-charge the dead-man output stops and the relay line stays closed until the unit\'s ExecStopPost command drives it to the open level and logs it', async (t) => {
    const tree = makeSysfsRoot(PI5_CHIPS);
    t.after(() => tree.cleanup());
    // activeLow: open is the high level here, so "0 after the kill" really is the closed coil
    const config = writeConfig(
      'charging.yaml',
      `hardware: pi
gpio:
  sysfsRoot: ${tree.root}
  relay: { chip: pinctrl-rp1, line: 17, activeLow: true }   # the contactor coil driver
  plugPresent: { chip: pinctrl-rp1, line: 22 }
  emergencyStop: { chip: pinctrl-rp1, line: 23 }
  heartbeat: { chip: pinctrl-rp1, line: 24 }                # the dead-man square wave
`,
    );
    const agent = await startAgent({ script: join(REPO_ROOT, 'test/support/fake-sysfs-agent.ts'), args: ['--config', config] });
    assert.equal(value(tree.root, RELAY), '1', 'the agent starts with the relay open (high, active-low)');
    assert.equal(value(tree.root, ESTOP), '0');

    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#DRIVER-KILL'), 'ACK#AUTORIZAR_SUMINISTRO');
    writeFileSync(join(tree.root, `gpio${PLUG}`, 'value'), '1\n');
    await agent.until((info) => info.state === 'Charging' && info.relay.commanded === 'closed', 10_000);
    assert.equal(value(tree.root, RELAY), '0', 'charging: the coil line is at its closed level');
    assert.deepEqual(await levelsSeen(tree.root, HEARTBEAT, 1000), ['0', '1'], 'the dead-man output toggles while charging');

    const killedMs = performance.now();
    agent.kill('SIGKILL');
    assert.equal((await agent.exited).signal, 'SIGKILL');
    assert.equal(value(tree.root, RELAY), '0', 'a sysfs line keeps the level the dead process left: the contactor would stay closed');
    assert.equal((await levelsSeen(tree.root, HEARTBEAT, 100)).length, 1, 'but the dead-man output is still: the circuit drops the coil');

    const stopPost = await run(execStopPost(config), { SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'KILL' });
    const closedForMs = performance.now() - killedMs;
    assert.equal(stopPost.code, 0, stopPost.stderr + stopPost.stdout);
    assert.equal(value(tree.root, RELAY), '1', 'driven to the open level');
    assert.equal(readFileSync(join(tree.root, `gpio${RELAY}`, 'direction'), 'utf8').trim(), 'high', 'an output at the open level');

    const lines = logLines(stopPost.stdout);
    assert.equal(lines.length, 1, `one journald line: ${stopPost.stdout}`);
    const [line] = lines;
    assert.equal(line!.event, 'relay_forced_open');
    assert.equal(line!.priority, 4, 'after a kill it is a warning');
    assert.deepEqual(line!.via, ['sysfs']);
    assert.equal(line!.open_level, 1);
    assert.equal(line!.service_result, 'signal');
    assert.equal(line!.exit_status, 'KILL');
    assert.deepEqual(
      { ...(line!.sysfs as object) },
      { outcome: 'driven', sysfs: RELAY, level: 1, exported: false, directionBefore: 'out', verified: true },
    );
    const message = `relay line closed for ${closedForMs.toFixed(0)} ms after SIGKILL (agent exit + ExecStopPost); relay-safe process ${stopPost.ms.toFixed(0)} ms, of which ${String(line!.took_ms)} ms driving the line`;
    t.diagnostic(message);
    console.log(message);
  });

  it('exports and drives a relay line that nothing holds, waiting for the kernel to create it', async (t) => {
    const tree = makeSysfsRoot(PI5_CHIPS);
    t.after(() => tree.cleanup());
    const config = writeConfig('export.yaml', `gpio:\n  sysfsRoot: ${tree.root}\n  relay:\n    chip: pinctrl-rp1\n    line: 17\n`);
    // the "kernel": creates gpioN/ a little after the number is written to export
    const kernel = setInterval(() => {
      const wanted = readFileSync(join(tree.root, 'export'), 'utf8').trim();
      if (wanted !== String(RELAY) || existsSync(join(tree.root, `gpio${RELAY}`))) return;
      mkdirSync(join(tree.root, `gpio${RELAY}`));
      for (const [file, text] of [['direction', 'in\n'], ['active_low', '1\n'], ['value', '1\n']]) writeFileSync(join(tree.root, `gpio${RELAY}`, file!), text!);
    }, 20);
    t.after(() => clearInterval(kernel));

    const result = await run(execStopPost(config), { SERVICE_RESULT: 'success' });
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.equal(value(tree.root, RELAY), '0', 'open is low for an active-high relay');
    assert.equal(readFileSync(join(tree.root, `gpio${RELAY}`, 'active_low'), 'utf8'), '0', 'levels are physical: a stray active_low is reset');
    const [line] = logLines(result.stdout);
    assert.equal(line!.event, 'relay_forced_open');
    assert.equal(line!.priority, 5, 'after a clean stop it is a notice');
    assert.equal((line!.sysfs as { exported: boolean }).exported, true);
    assert.equal((line!.sysfs as { directionBefore: string }).directionBefore, 'in');
  });

  it('drives the line through the character device with gpiod\'s tools when there is no sysfs GPIO (gpioset v1 and v2 arguments)', async (t) => {
    for (const version of ['gpioset (libgpiod) v1.6.3', 'gpioset (libgpiod) v2.1']) {
      const bin = mkdtempSync(join(scratch, 'bin-'));
      t.after(() => rmSync(bin, { recursive: true, force: true }));
      const calls = join(bin, 'calls');
      writeFileSync(join(bin, 'gpiodetect'), '#!/bin/sh\necho "gpiochip0 [pinctrl-bcm2711] (58 lines)"\necho "gpiochip1 [raspberrypi-exp-gpio] (8 lines)"\n');
      writeFileSync(join(bin, 'gpioset'), `#!/bin/sh\nif [ "$1" = --version ]; then echo "${version}"; exit 0; fi\necho "$@" >> ${calls}\n`);
      chmodSync(join(bin, 'gpiodetect'), 0o755);
      chmodSync(join(bin, 'gpioset'), 0o755);
      const config = writeConfig('chardev.yaml', `gpio:\n  sysfsRoot: ${join(scratch, 'no-sysfs')}\n  relay: { chip: pinctrl-bcm2711, line: 17, activeLow: true }\n`);

      const result = await run(execStopPost(config), { PATH: `${bin}:/usr/bin:/bin`, SERVICE_RESULT: 'watchdog' });
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const expected = version.includes('v2') ? '-c gpiochip0 -t 0 17=1' : '--mode=exit gpiochip0 17=1';
      assert.equal(readFileSync(calls, 'utf8').trim(), expected);
      const [line] = logLines(result.stdout);
      assert.equal(line!.event, 'relay_forced_open');
      assert.deepEqual(line!.via, ['chardev']);
      assert.equal((line!.sysfs as { outcome: string }).outcome, 'absent');
      assert.equal((line!.chardev as { chip: string }).chip, 'gpiochip0');
    }
  });

  it('fails loudly (exit 1, a crit line) when neither sysfs nor the character device can drive the line', async () => {
    const config = writeConfig('nothing.yaml', `gpio:\n  sysfsRoot: ${join(scratch, 'no-sysfs')}\n  relay: { chip: pinctrl-rp1, line: 17 }\n`);
    const result = await run(execStopPost(config), { PATH: join(scratch, 'empty-path') });
    assert.equal(result.code, 1);
    const [line] = logLines(result.stdout);
    assert.equal(line!.event, 'relay_force_open_failed');
    assert.equal(line!.priority, 2);
    assert.match(String((line!.chardev as { detail: string }).detail), /gpiodetect not found/);
  });

  it('--check (run by install.sh) resolves the line and its open level without touching it', async (t) => {
    const tree = makeSysfsRoot(PI5_CHIPS);
    t.after(() => tree.cleanup());
    const config = writeConfig('check.yaml', `gpio:\n  sysfsRoot: ${tree.root}\n  relay: { chip: pinctrl-rp1, line: 17, activeLow: true }\n`);
    const result = await run([...execStopPost(config), '--check']);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const [line] = logLines(result.stdout);
    assert.equal(line!.event, 'relay_safe_checked');
    assert.equal(line!.sysfs, RELAY);
    assert.equal(line!.open_level, 1);
    assert.equal(readFileSync(join(tree.root, 'export'), 'utf8'), '', 'nothing exported');
    assert.equal(existsSync(join(tree.root, `gpio${RELAY}`)), false);
  });

  it('does nothing, and says so, when no relay line is configured (simulated hardware)', async () => {
    const config = writeConfig('sim.yaml', 'hardware: sim\ncpId: CP-9\n');
    const result = await run(execStopPost(config));
    assert.equal(result.code, 0);
    assert.equal(logLines(result.stdout)[0]!.event, 'relay_safe_skipped');
  });

  it('exits 78 with a crit line when the config cannot be read', async () => {
    const result = await run(execStopPost(join(scratch, 'missing.yaml')));
    assert.equal(result.code, 78);
    const [line] = logLines(result.stdout);
    assert.equal(line!.event, 'relay_force_open_failed');
    assert.equal(line!.code, 'CONFIG_UNREADABLE');
  });
});
