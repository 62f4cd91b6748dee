import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_UNITS, journalctlArgs, parseDiagnoseArgs, runDiagnoseCommand } from './command.js';

async function run(argv: string[], journalctl?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runDiagnoseCommand(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), ...(journalctl ? { journalctl } : {}) });
  return { code, stdout, stderr };
}

describe('charger-agent diagnose arguments', () => {
  it('read the agent and the monitor by default', () => {
    assert.deepEqual(parseDiagnoseArgs([]), { units: DEFAULT_UNITS, files: [], json: false });
  });

  it('take units (with or without .service), several files, a time window and --json', () => {
    const options = parseDiagnoseArgs(['--unit', 'charger-agent', '--unit=foo.timer', '--file', 'a.journal', '--file', 'b.journal', '--since=-2h', '--until', 'now', '--json']);
    assert.deepEqual(options, { units: ['charger-agent.service', 'foo.timer'], since: '-2h', until: 'now', files: ['a.journal', 'b.journal'], json: true });
    assert.deepEqual(journalctlArgs(options as Exclude<typeof options, 'help'>), [
      '--output=json',
      '--no-pager',
      '--file=a.journal',
      '--file=b.journal',
      '--unit=charger-agent.service',
      '--unit=foo.timer',
      '--since=-2h',
      '--until=now',
    ]);
  });

  it('print help with --help and exit 0', async () => {
    const result = await run(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^usage: charger-agent diagnose/);
  });

  it('reject an unknown option with exit 2 and the usage', async () => {
    const result = await run(['--verbose']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Unknown option '--verbose'/);
    assert.match(result.stderr, /usage: charger-agent diagnose/);
  });

  it('exit 1 with a clear message when journalctl is missing', async () => {
    const result = await run([], '/nonexistent/journalctl');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /JOURNALCTL_MISSING: \/nonexistent\/journalctl not found/);
  });
});
