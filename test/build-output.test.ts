/**
 * What `npm run build` (tsconfig.build.json) emits is what scripts/install.sh copies to the device:
 * the production import graph only. Test aids (fakes, in-memory transports, manual clocks, recording
 * loggers) live in testing/ folders that the build leaves out; a production module that imported one
 * would pull it back into the output, and the first test would fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const TEST_AID_NAME = /(^|[-.])(fake|mock|stub|manual-clock|memory-transport|recording-logger|memory-logger)([-.]|$)/;

async function filesUnder(root: string, skip: (name: string) => boolean = () => false): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (skip(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else found.push(relative(root, path));
    }
  };
  await walk(root);
  return found.sort();
}

/** Relative module specifiers of an emitted ES module: static imports and exports, import(), and worker entries (new URL('./x.js', import.meta.url)). */
function relativeImports(code: string): string[] {
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bnew\s+URL\s*\(\s*)['"](\.{1,2}\/[^'"]+\.js)['"]/g)].map((match) => match[1]!);
}

/** An emitted module with no code: its source declared only types. */
function isTypesOnly(code: string): boolean {
  return code.replace(/\/\/.*$/gm, '').trim() === 'export {};';
}

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

describe('build output', () => {
  it('the production build emits the CLI and its commands, nothing the CLI never loads, and no testing/ folder, fake or test module', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'charger-agent-dist-'));
    cleanup.push(outDir);
    await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', outDir], { cwd: REPO });
    const emitted = await filesUnder(outDir);

    for (const entry of ['agent/cli.js', 'agent/cli/run-command.js', 'agent/monitor/monitor-command.js', 'drivers/meter/simulator-cli.js', 'drivers/sim/sim-hardware.js', 'agent/meter/link.js']) {
      assert.ok(emitted.includes(entry), `${entry} is missing from the build output`);
    }
    const testing = emitted.filter((file) => file.split(sep).includes('testing'));
    assert.deepEqual(testing, [], 'testing/ modules in the build output');
    const aids = emitted.filter((file) => TEST_AID_NAME.test(file.split(sep).at(-1)!));
    assert.deepEqual(aids, [], 'fake or mock modules in the build output');
    const tests = emitted.filter((file) => /\.test\.js(\.map)?$/.test(file));
    assert.deepEqual(tests, [], 'test files in the build output');

    // Everything emitted is what the CLI can load (its commands are dynamic imports): a module that
    // nothing production imports is a test aid or dead code, and is not shipped to the device.
    const reached = new Set<string>();
    const queue = ['agent/cli.js'];
    for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
      if (reached.has(file)) continue;
      reached.add(file);
      const path = join(outDir, file);
      for (const specifier of relativeImports(await readFile(path, 'utf8'))) queue.push(relative(outDir, resolve(dirname(path), specifier)));
    }
    assert.ok(reached.size > 50, `only ${reached.size} modules reached from agent/cli.js`);
    const unreached: string[] = [];
    for (const file of emitted.filter((f) => f.endsWith('.js') && !reached.has(f))) {
      if (!isTypesOnly(await readFile(join(outDir, file), 'utf8'))) unreached.push(file);
    }
    assert.deepEqual(unreached, [], 'modules in the build output that the CLI never loads');
  });

  it('every test aid in the sources sits in a testing/ folder and no production module imports one', async () => {
    const sources = [...(await filesUnder(join(REPO, 'agent'))).map((f) => join('agent', f)), ...(await filesUnder(join(REPO, 'drivers'))).map((f) => join('drivers', f))];
    const outside = sources.filter((file) => TEST_AID_NAME.test(file.split(sep).at(-1)!) && !file.split(sep).includes('testing'));
    assert.deepEqual(outside, [], 'test aids outside a testing/ folder');

    const production = sources.filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.split(sep).includes('testing'));
    assert.ok(production.length > 50, `only ${production.length} production sources found`);
    const importers: string[] = [];
    for (const file of production) {
      const text = await readFile(join(REPO, file), 'utf8');
      if (/from '[^']*\/testing\/|import\('[^']*\/testing\//.test(text)) importers.push(file);
    }
    assert.deepEqual(importers, [], 'production modules importing a testing/ module');
  });

  it('drivers/ imports nothing from agent/, tests included: the dependency points one way', async () => {
    const drivers = (await filesUnder(join(REPO, 'drivers'))).filter((file) => file.endsWith('.ts'));
    assert.ok(drivers.length > 20, `only ${drivers.length} driver sources found`);
    const wrongWay: string[] = [];
    for (const file of drivers) {
      const path = join(REPO, 'drivers', file);
      const text = await readFile(path, 'utf8');
      for (const [, specifier] of text.matchAll(/(?:from |import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = relative(REPO, resolve(dirname(path), specifier!));
        if (!target.startsWith(`drivers${sep}`)) wrongWay.push(`drivers/${file} -> ${specifier}`);
      }
    }
    assert.deepEqual(wrongWay, []);
  });
});
