/**
 * scripts/install.sh and uninstall.sh against a staging root (--root), as an image builder runs
 * them: the real scripts, the real package.json and lock file, the real npm and systemd tools.
 *
 * The source tree is a copy of this repository's packaging inputs with a probe as dist/agent/cli.js
 * (the CLI's entry point): building the real dist/ is `npm run build`'s job, and the probe proves
 * what matters here, that the installed app resolves every production dependency, native addons
 * included, from /opt/charger-agent/node_modules. Dependencies come in with `--deps copy` (this
 * tree's node_modules, then `npm prune --omit=dev`): offline and fast, and the same production set
 * that `npm ci --omit=dev` installs on the device.
 *
 * As root (CI), the staging root carries copies of this machine's user database, so the charger-agent
 * user is really created by systemd-sysusers and removed by userdel; as non-root it cannot be, and
 * those assertions turn into "install.sh says the user comes at first boot".
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, chmod, cp, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;
const USER_DB = ['passwd', 'group', 'shadow', 'gshadow', 'login.defs'];
/** Backups and the lock file that shadow-utils and systemd-sysusers leave next to the user database. */
const USER_DB_SIDE_FILES = ['etc/passwd-', 'etc/group-', 'etc/shadow-', 'etc/gshadow-', 'etc/.pwd.lock'];

const PROBE = `// Test probe standing in for the CLI: loads every production dependency from the installed app.
import { readFileSync } from 'node:fs';
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const loaded = [];
for (const name of Object.keys(pkg.dependencies)) {
  await import(name);
  loaded.push(name);
}
const { default: Database } = await import('better-sqlite3');
const { answer } = new Database(':memory:').prepare('select 41 + 1 as answer').get();
console.log(JSON.stringify({ loaded, answer }));
`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(command: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: Number(failed.code), stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

async function succeed(command: string, args: string[]): Promise<Result> {
  const result = await sh(command, args);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The packaging inputs of this repository, with the probe as the built CLI. */
async function sourceTree(options: { built: boolean }): Promise<string> {
  const src = await mkdtemp(join(tmpdir(), 'charger-agent-src-'));
  for (const file of ['package.json', 'package-lock.json']) await cp(join(REPO, file), join(src, file));
  await cp(join(REPO, 'systemd'), join(src, 'systemd'), { recursive: true });
  await mkdir(join(src, 'scripts'));
  for (const script of ['install.sh', 'uninstall.sh']) await cp(join(REPO, 'scripts', script), join(src, 'scripts', script));
  await symlink(join(REPO, 'node_modules'), join(src, 'node_modules'));
  if (options.built) {
    await mkdir(join(src, 'dist/agent'), { recursive: true });
    await writeFile(join(src, 'dist/agent/cli.js'), PROBE);
  }
  return src;
}

/** A target root: the distribution's units and a /usr/bin/node (for verify), and, as root, its user database. */
async function stagingRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'charger-agent-stage-'));
  await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
  await cp('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await writeFile(join(root, 'usr/bin/node'), '#!/bin/sh\nexec node "$@"\n');
  await chmod(join(root, 'usr/bin/node'), 0o755);
  await mkdir(join(root, 'etc'));
  if (IS_ROOT) for (const file of USER_DB) await cp(join('/etc', file), join(root, 'etc', file));
  return root;
}

/** Every entry under root with what identifies its content: type, mode, owner, hash or link target. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const stat = await lstat(path);
      const id = `${(stat.mode & 0o7777).toString(8)} ${stat.uid}:${stat.gid}`;
      const key = relative(root, path);
      if (stat.isSymbolicLink()) entries.set(key, `link ${id} -> ${await readlink(path)}`);
      else if (stat.isDirectory()) {
        entries.set(key, `dir ${id}`);
        await walk(path);
      } else entries.set(key, `file ${id} ${createHash('sha256').update(await readFile(path)).digest('hex')}`);
    }
  };
  await walk(root);
  return entries;
}

const files = (entries: Map<string, string>) => [...entries].filter(([, what]) => !what.startsWith('dir')).map(([path]) => path);

let src: string;
let stage: string;
let baseline: Map<string, string>;
const cleanup: string[] = [];

before(async () => {
  for (const tool of ['systemd-analyze', 'systemctl', 'npm']) {
    assert.equal((await sh('sh', ['-c', `command -v ${tool}`])).code, 0, `${tool} is needed by the install tests`);
  }
  src = await sourceTree({ built: true });
  stage = await stagingRoot();
  cleanup.push(src, stage);
  baseline = await snapshot(stage);
});

after(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

const install = (...flags: string[]) => sh('bash', [join(src, 'scripts/install.sh'), '--root', stage, '--no-build', '--deps', 'copy', ...flags]);
const uninstall = (...flags: string[]) => sh('bash', [join(src, 'scripts/uninstall.sh'), '--root', stage, ...flags]);

describe('install.sh --root', () => {
  it('stages the app, the units, the user and /etc/charger-agent, and systemd-analyze verify says nothing', async () => {
    const result = await install();
    assert.equal(result.code, 0, result.stderr);

    const verify = await sh('systemd-analyze', ['verify', `--root=${stage}`, 'charger-agent.service', 'charger-monitor.service']);
    assert.equal(verify.stdout + verify.stderr, '');
    assert.equal(verify.code, 0);

    for (const unit of ['charger-agent.service', 'charger-monitor.service']) {
      assert.equal(await readFile(join(stage, 'etc/systemd/system', unit), 'utf8'), await readFile(join(REPO, 'systemd', unit), 'utf8'));
    }
    assert.equal(await readFile(join(stage, 'etc/charger-agent/config.yaml'), 'utf8'), await readFile(join(REPO, 'systemd/config.example.yaml'), 'utf8'));
    assert.equal((await lstat(join(stage, 'etc/charger-agent/env'))).mode & 0o777, 0o600, 'env may hold secrets: root only');
    assert.equal(await readFile(join(stage, 'usr/lib/sysusers.d/charger-agent.conf'), 'utf8'), await readFile(join(REPO, 'systemd/charger-agent.sysusers'), 'utf8'));
    assert.equal((await lstat(join(stage, 'opt/charger-agent/examples/env.example'))).isFile(), true);
    // the installed CLI (here the probe) was asked whether the unit's ExecStopPost can read the config
    assert.match(result.stderr, /relay-safe \(ExecStopPost\) checked: /);

    if (IS_ROOT) {
      const passwd = await readFile(join(stage, 'etc/passwd'), 'utf8');
      assert.match(passwd, /^charger-agent:x:\d+:\d+:EV charge-point controller:\/var\/lib\/charger-agent:\/usr\/sbin\/nologin$/m);
      const group = await readFile(join(stage, 'etc/group'), 'utf8');
      assert.match(group, /^gpio:x:\d+:(.*,)?charger-agent(,.*)?$/m);
      assert.match(group, /^dialout:x:\d+:(.*,)?charger-agent(,.*)?$/m);
    } else {
      assert.match(result.stderr, /systemd-sysusers\.service creates it at first boot/);
    }
  });

  it('installs the production dependencies only, and the installed app loads all of them', async () => {
    const app = join(stage, 'opt/charger-agent');
    const modules = new Set(await readdir(join(app, 'node_modules')));
    for (const dev of ['typescript', 'tsx']) assert.ok(!modules.has(dev), `dev dependency ${dev} was installed`);
    assert.ok(!(await readdir(join(app, 'node_modules/@types'))).includes('better-sqlite3'), '@types/better-sqlite3 is a dev dependency');

    const probe = await succeed(process.execPath, [join(app, 'dist/agent/cli.js')]);
    const { loaded, answer } = JSON.parse(probe.stdout) as { loaded: string[]; answer: number };
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.deepEqual(loaded.sort(), Object.keys(pkg.dependencies).sort());
    assert.equal(answer, 42, 'the native better-sqlite3 addon works from /opt/charger-agent');
  });

  it('changes nothing when run again, and keeps the config an operator edited', async () => {
    const config = join(stage, 'etc/charger-agent/config.yaml');
    await appendFile(config, '\nhardware: pi\n');
    const edited = await readFile(config, 'utf8');
    const before = await snapshot(stage);

    const again = await install();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /kept .*config\.yaml \(yours/);
    assert.doesNotMatch(again.stderr, /wrote|created/);
    assert.deepEqual(await snapshot(stage), before);
    assert.equal(await readFile(config, 'utf8'), edited);
  });

  it('enables the units offline with --enable, for an image', async () => {
    const result = await install('--enable');
    assert.equal(result.code, 0, result.stderr);
    for (const unit of ['charger-agent.service', 'charger-monitor.service']) {
      assert.equal(await readlink(join(stage, 'etc/systemd/system/multi-user.target.wants', unit)), `/etc/systemd/system/${unit}`);
    }
  });

  it('uninstall leaves nothing behind but /etc/charger-agent', async () => {
    const result = await uninstall();
    assert.equal(result.code, 0, result.stderr);
    const left = await snapshot(stage);
    const added = files(left).filter((path) => !baseline.has(path) && !USER_DB_SIDE_FILES.includes(path));
    assert.deepEqual(added.sort(), ['etc/charger-agent/config.yaml', 'etc/charger-agent/env']);
    for (const path of files(baseline)) assert.ok(left.has(path), `uninstall removed ${path}, which it did not install`);
    for (const gone of ['opt/charger-agent', 'etc/systemd/system/multi-user.target.wants/charger-agent.service']) {
      assert.ok(!left.has(gone), `${gone} is still there`);
    }
    if (IS_ROOT) {
      for (const db of ['passwd', 'group', 'shadow', 'gshadow']) {
        assert.doesNotMatch(await readFile(join(stage, 'etc', db), 'utf8'), /charger-agent/, `etc/${db}`);
      }
    }
  });

  it('uninstall --purge removes the config and the state too', async () => {
    assert.equal((await install()).code, 0);
    await mkdir(join(stage, 'var/lib/charger-agent'), { recursive: true });
    await writeFile(join(stage, 'var/lib/charger-agent/outbox.db'), 'unsent telemetry');

    const keep = await uninstall();
    assert.equal(keep.code, 0, keep.stderr);
    assert.match(keep.stderr, /kept: .*etc\/charger-agent .*var\/lib\/charger-agent \(remove with --purge\)/);
    assert.equal(await readFile(join(stage, 'var/lib/charger-agent/outbox.db'), 'utf8'), 'unsent telemetry');

    const purge = await uninstall('--purge');
    assert.equal(purge.code, 0, purge.stderr);
    const left = await snapshot(stage);
    const added = files(left).filter((path) => !baseline.has(path) && !USER_DB_SIDE_FILES.includes(path));
    assert.deepEqual(added, []);
  });

  it('refuses --no-build without a built dist/ and says how to build', async () => {
    const unbuilt = await sourceTree({ built: false });
    cleanup.push(unbuilt);
    const result = await sh('bash', [join(unbuilt, 'scripts/install.sh'), '--root', stage, '--no-build', '--skip-deps']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /dist\/agent\/cli\.js is missing: run npm ci && npm run build/);
  });
});
