import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { runSessionsCommand } from './sessions-command.js';
import { openTelemetryStore } from './store.js';
import { chargingSession } from './testing/charging-session.js';

const CP = 'CP-S';
const T0 = Date.parse('2025-03-01T10:00:00Z');
let stateDir: string;
let firstCost: number;

async function run(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runSessionsCommand(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) }, {});
  return { code, stdout, stderr };
}

before(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'charger-sessions-'));
  const store = openTelemetryStore({
    stateDir,
    cpId: CP,
    maxBytes: 1024 * 1024,
    consumoFlushMs: 30_000,
    ledgerCheckpointMs: 60_000,
    outbox: false,
    log: createMemoryLogger(),
  });
  const first = chargingSession({ cpId: CP, driverId: 'DRIVER-42', startMs: T0, seconds: 60, startImportKwh: 500 });
  for (const { event } of first) store.append(event);
  firstCost = first.find(({ event }) => event.type === 'SUPPLY_END')!.event.importe!;
  const second = chargingSession({ cpId: CP, driverId: 'DRIVER-7', startMs: T0 + 3_600_000, seconds: 5, sessionNo: 1 });
  for (const { event } of second.filter(({ event }) => event.type === 'SESSION_STARTED')) store.append(event);
  await store.close();
});
after(() => rmSync(stateDir, { recursive: true, force: true }));

describe('charger-agent sessions', () => {
  it('prints the ledger as JSON with the wire field names, newest first', async () => {
    const { code, stdout } = await run('--json', '--state-dir', stateDir);
    assert.equal(code, 0);
    const sessions = JSON.parse(stdout);
    assert.equal(sessions.length, 2);
    assert.equal(sessions[0].user_id, 'DRIVER-7');
    assert.equal(sessions[0].open, true);
    assert.equal(sessions[0].ended_at, null);
    assert.deepEqual(
      { ...sessions[1], session_id: undefined },
      {
        session_id: undefined,
        user_id: 'DRIVER-42',
        authorized_at: '2025-03-01T10:00:00.000Z',
        started_at: '2025-03-01T10:00:00.000Z',
        ended_at: '2025-03-01T10:01:00.540Z',
        start_import_kwh: 500,
        end_import_kwh: sessions[1].end_import_kwh,
        kwh: 0.123,
        importe: firstCost,
        reason: 'unplugged',
        fault: null,
        open: false,
      },
    );
  });

  it('prints a table for people, and honours --limit', async () => {
    const { code, stdout } = await run('--state-dir', stateDir, '--limit', '1');
    assert.equal(code, 0);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^SESSION\s+DRIVER\s+AUTHORIZED \(UTC\)\s+STARTED\s+ENDED\s+KWH\s+IMPORTE\s+REASON$/);
    assert.match(lines[1]!, /DRIVER-7\s+2025-03-01 11:00:00\s+-\s+open\s+0\.000\s+0\.0000\s+-$/);
  });

  it('explains a missing ledger, a bad flag, and answers --help', async () => {
    const missing = await run('--state-dir', join(stateDir, 'nope'));
    assert.equal(missing.code, 66);
    assert.match(missing.stderr, /no ledger at .*charger-agent\.db/);
    const bad = await run('--limit', 'many');
    assert.equal(bad.code, 64);
    const unknown = await run('--colour');
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /Usage: charger-agent sessions/);
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--state-dir DIR/);
  });
});
