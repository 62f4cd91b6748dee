/**
 * The unit files as systemd itself reads them: `systemd-analyze verify` on a staging root that
 * holds the distribution's units and a /usr/bin/node (verify resolves After=/Wants= targets and
 * checks that ExecStart's binary exists, under --root), and `systemd-analyze security --offline`
 * for the exposure score. Plus the examples that install.sh copies to /etc/charger-agent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { RUN_FLAGS, envName } from '../agent/config/flags.js';
import { loadConfig } from '../agent/config/load.js';
import { configSchema } from '../agent/config/schema.js';

const run = promisify(execFile);
const SYSTEMD_DIR = fileURLToPath(new URL('../systemd/', import.meta.url));
const UNITS = ['charger-agent.service', 'charger-monitor.service'];
const MAX_EXPOSURE = 2.5;

/** stdout and stderr together, and the exit code, without throwing on a non-zero exit. */
async function analyze(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('systemd-analyze', args, { env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') throw new Error('systemd-analyze is missing (apt-get install systemd)');
    return { code: Number(failed.code), output: (failed.stdout ?? '') + (failed.stderr ?? '') };
  }
}

/** A root with the distribution's units (targets the units name) and an executable /usr/bin/node. */
async function systemdRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'charger-agent-units-'));
  await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
  await cp('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  // verify only checks that ExecStart's binary is an executable inside the root.
  await writeFile(join(root, 'usr/bin/node'), '#!/bin/sh\nexec node "$@"\n');
  await chmod(join(root, 'usr/bin/node'), 0o755);
  await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
  return root;
}

function unitSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
  }
  return settings;
}

/** The example with every commented-out setting switched on: `#key:` and `#  key:` lines. */
function uncommented(yaml: string): string {
  return yaml.replace(/^#(?=[A-Za-z]\w*:(\s|$)| {2,}[A-Za-z]\w*:(\s|$))/gm, '');
}

let root: string;
let scratch: string;

before(async () => {
  root = await systemdRoot();
  scratch = await mkdtemp(join(tmpdir(), 'charger-agent-config-'));
  for (const unit of UNITS) await cp(join(SYSTEMD_DIR, unit), join(root, 'etc/systemd/system', unit));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

describe('systemd units', () => {
  it('pass systemd-analyze verify on a staging root without a word', async () => {
    const { code, output } = await analyze(['verify', `--root=${root}`, ...UNITS]);
    assert.equal(output, '');
    assert.equal(code, 0);
  });

  it('would fail verify with a misspelt setting or without /usr/bin/node, so the check is real', async () => {
    const unit = await readFile(join(SYSTEMD_DIR, 'charger-agent.service'), 'utf8');
    await writeFile(join(root, 'etc/systemd/system/typo.service'), unit.replace('WatchdogSec=10', 'WatchdogSecs=10'));
    const typo = await analyze(['verify', `--root=${root}`, 'typo.service']);
    assert.match(typo.output, /Unknown key 'WatchdogSecs'/);

    await writeFile(join(root, 'etc/systemd/system/nonode.service'), unit.replace('/usr/bin/node', '/usr/bin/node-missing'));
    const missing = await analyze(['verify', `--root=${root}`, 'nonode.service']);
    assert.match(missing.output, /Command \/usr\/bin\/node-missing is not executable/);
    assert.notEqual(missing.code, 0);
  });

  for (const unit of UNITS) {
    it(`${unit} scores an exposure of at most ${MAX_EXPOSURE} in systemd-analyze security --offline`, async () => {
      const { output } = await analyze(['security', '--offline=true', `--root=${root}`, '--no-pager', unit]);
      const match = /Overall exposure level for \S+: (\d+\.\d+)/.exec(output);
      assert.ok(match, output);
      const exposure = Number(match[1]);
      assert.ok(exposure <= MAX_EXPOSURE, `${unit} exposure ${exposure} > ${MAX_EXPOSURE}:\n${output}`);
    });
  }

  for (const unit of UNITS) {
    it(`${unit} is a watchdog-supervised notify service that a bad config does not restart-loop`, async () => {
      const settings = unitSettings(await readFile(join(SYSTEMD_DIR, unit), 'utf8'));
      const one = (key: string) => settings.get(key)?.join(' ');
      assert.equal(one('Type'), 'notify');
      assert.equal(one('NotifyAccess'), 'all', 'systemd-notify runs as a child of node');
      assert.equal(one('WatchdogSec'), '10');
      assert.equal(one('Restart'), 'on-failure');
      assert.equal(one('RestartPreventExitStatus'), '78');
      assert.equal(one('EnvironmentFile'), '-/etc/charger-agent/env');
      assert.equal(one('User'), 'charger-agent');
      assert.notEqual(one('MemoryDenyWriteExecute'), 'yes', "Node's JIT needs writable executable memory");
      const command = unit === 'charger-agent.service' ? 'run' : 'monitor';
      assert.equal(one('ExecStart'), `/usr/bin/node /opt/charger-agent/dist/agent/cli.js ${command} --config /etc/charger-agent/config.yaml`);
    });
  }

  it('lets the agent reach GPIO and the serial port of the meter, and nothing else', async () => {
    const settings = unitSettings(await readFile(join(SYSTEMD_DIR, 'charger-agent.service'), 'utf8'));
    assert.equal(settings.get('StateDirectory')?.[0], 'charger-agent');
    assert.deepEqual(settings.get('SupplementaryGroups'), ['gpio dialout']);
    assert.deepEqual(settings.get('DevicePolicy'), ['closed']);
    assert.notEqual(settings.get('PrivateDevices')?.[0], 'yes', 'PrivateDevices=yes hides /dev/gpiochip* and /dev/ttyUSB*');
    const devices = (settings.get('DeviceAllow') ?? []).map((entry) => entry.split(/\s+/)[0]);
    // /dev/serial0 on a Pi links to ttyAMA0 or ttyS0; RS-485 adapters are ttyUSB or ttyACM.
    for (const group of ['char-gpiochip', 'char-ttyUSB', 'char-ttyACM', 'char-ttyAMA', 'char-ttyS']) {
      assert.ok(devices.includes(group), `DeviceAllow=${group}`);
    }
    const writable = (settings.get('ReadWritePaths') ?? []).join(' ').split(/\s+/);
    assert.ok(writable.includes('-/sys/class/gpio'), 'sysfs GPIO export/unexport');
    assert.ok(writable.includes('-/sys/devices/platform'), 'where /sys/class/gpio/gpioN/value really lives');
  });

  it('charger-agent.service drives the relay line open after every end of the agent: ExecStopPost runs relay-safe on the config ExecStart reads', async () => {
    const settings = unitSettings(await readFile(join(SYSTEMD_DIR, 'charger-agent.service'), 'utf8'));
    const [start] = settings.get('ExecStart')!;
    const stopPost = settings.get('ExecStopPost') ?? [];
    assert.equal(stopPost.length, 1);
    // no "-" prefix: a relay-safe that fails leaves the unit failed, visible in systemctl status
    assert.match(stopPost[0]!, /^\/usr\/bin\/node \/opt\/charger-agent\/dist\/agent\/cli\.js relay-safe /);
    const config = (line: string) => /--config (\S+)/.exec(line)?.[1];
    assert.equal(config(stopPost[0]!), config(start!));
  });
});

describe('configuration examples', () => {
  const examplePath = join(SYSTEMD_DIR, 'config.example.yaml');

  it('config.example.yaml is a valid configuration as shipped', () => {
    const config = loadConfig({ file: examplePath, env: {} });
    assert.equal(config.cpId, 'CP-001');
  });

  it('config.example.yaml stays valid with every commented-out setting switched on, and shows every section', async () => {
    const text = uncommented(await readFile(examplePath, 'utf8'));
    // the files it names (CA, certificates, passwords) must exist: the loader checks them, so they are made here
    const withFiles = await withReadableFiles(text, scratch);
    const file = join(scratch, 'all-settings.yaml');
    await writeFile(file, withFiles);
    loadConfig({ file, env: {} });
    const keys = Object.keys((parseDocument(text).toJS() ?? {}) as object).sort();
    assert.deepEqual(keys, Object.keys(configSchema.shape).sort());
  });

  it('env.example names only variables the agent reads', async () => {
    const known = new Set([...RUN_FLAGS.map((spec) => envName(spec.flag)), 'CHARGER_LOG_LEVEL', 'NODE_OPTIONS']);
    const named = [...(await readFile(join(SYSTEMD_DIR, 'env.example'), 'utf8')).matchAll(/^#?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!);
    assert.ok(named.length >= 5, named.join(' '));
    for (const name of named) assert.ok(known.has(name), `${name} is not a flag's env name`);
  });
});

/** Points every `…File: /path` setting of a config text at a file made for it under `dir`. */
async function withReadableFiles(text: string, dir: string): Promise<string> {
  let index = 0;
  const made: Array<Promise<void>> = [];
  const rewritten = text.replace(/^(\s*(?:[a-zA-Z]+File):\s*)(\/\S+)/gm, (_line, key: string, path: string) => {
    const local = join(dir, `file-${(index += 1)}-${path.split('/').pop()}`);
    made.push(writeFile(local, 'placeholder\n'));
    return `${key}${local}`;
  });
  await Promise.all(made);
  return rewritten;
}
