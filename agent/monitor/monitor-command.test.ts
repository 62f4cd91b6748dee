import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { formatTable } from './self-test.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
// The command as cli.ts runs it, without depending on cli.ts's command table.
const ENTRY = "import { runMonitorCommand } from './agent/monitor/monitor-command.ts'; process.exit(await runMonitorCommand(process.argv.slice(1)));";

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CHARGER_LOG_LEVEL: 'info' };
  for (const key of Object.keys(env)) if (key.startsWith('CHARGER_') && key !== 'CHARGER_LOG_LEVEL') delete env[key];
  return { ...env, ...extra };
}

function start(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, '--', ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = start(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

const servers: Server[] = [];
after(() => servers.forEach((server) => server.close()));

async function engine(answer: string): Promise<number> {
  const server = createServer((socket) => socket.on('data', () => socket.end(answer)).on('error', () => {}));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

describe('charger-agent monitor', () => {
  it('--help prints the usage with env names and exits 0', async () => {
    const result = await run(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: charger-agent monitor/);
    assert.match(result.stdout, /--interval-ms/);
    assert.match(result.stdout, /env CHARGER_MONITOR_PORT/);
  });

  it('an unknown flag is a usage error (2)', async () => {
    const result = await run(['--intervall-ms', '5']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Unknown option '--intervall-ms'/);
  });

  it('a bad setting exits 78 naming it', async () => {
    const result = await run(['--interval-ms', 'soon', '--port', '70000']);
    assert.equal(result.code, 78);
    assert.match(result.stdout, /config_invalid.*--interval-ms: expected a number/);
    assert.match(result.stdout, /config_invalid.*monitor\.port: .*\(from --port\)/);
  });

  it('--test with an engine answering OK and no brokers exits 0 and prints the table', async () => {
    const port = await engine('OK\n');
    const result = await run(['--test', '--port', String(port)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const [header, row] = result.stdout.trim().split('\n');
    assert.match(header!, /^TARGET\s+RESULT\s+DETAIL$/);
    assert.match(row!, new RegExp(`^engine 127\\.0\\.0\\.1:${port}\\s+OK\\s+answered OK in \\d+ ms$`));
  });

  it('--test counts an engine answering KO as reachable, and says it is faulted', async () => {
    const port = await engine('KO\n');
    const result = await run(['--test', '--port', String(port)]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /KO\s+answered KO in \d+ ms \(the engine reports a fault\)/);
  });

  it('--test exits 1 when the engine or a broker does not answer, with one row each', async () => {
    const [enginePort, kafkaPort, mqttPort] = [await closedPort(), await closedPort(), await closedPort()];
    // a refused connection is answered at once; the long connect timeout keeps a loaded machine from calling it TIMEOUT
    const result = await run(['--test', '--connect-timeout-ms', '20000', '--port', String(enginePort), '--kafka-brokers', `127.0.0.1:${kafkaPort}`, '--mqtt-url', `mqtt://127.0.0.1:${mqttPort}`]);
    assert.equal(result.code, 1);
    const rows = result.stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 3);
    assert.match(rows[0]!, /^engine .*CONNECTION_ERROR\s+connect ECONNREFUSED/);
    assert.match(rows[1]!, new RegExp(`^kafka 127\\.0\\.0\\.1:${kafkaPort}\\s+FAIL\\s+.*ECONNREFUSED`));
    assert.match(rows[2]!, new RegExp(`^mqtt mqtt://127\\.0\\.0\\.1:${mqttPort}\\s+FAIL\\s+ECONNREFUSED`));
  });

  it('takes its own settings from env CHARGER_MONITOR_*', async () => {
    const port = await engine('OK\n');
    const result = await run(['--test'], { CHARGER_MONITOR_PORT: String(port) });
    assert.equal(result.code, 0);
    assert.match(result.stdout, new RegExp(`engine 127\\.0\\.0\\.1:${port}`));
  });

  it('runs without any broker, logs one line per engine change, and stops cleanly on SIGTERM', async () => {
    const port = await engine('OK\n');
    const child = start(['--port', String(port), '--interval-ms', '50', '--cp-id', 'CP-042']);
    const events: Array<Record<string, unknown>> = [];
    const seen = new Promise<void>((resolveSeen) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /^<\d>(\{.*\})$/.exec(line);
        if (!match) return;
        const event = JSON.parse(match[1]!) as Record<string, unknown>;
        events.push(event);
        if (event.event === 'engine_status') resolveSeen();
      });
    });
    await seen;
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    const names = events.map((e) => e.event);
    assert.deepEqual(names.slice(0, 2), ['monitor_started', 'engine_status']);
    assert.ok(names.includes('monitor_stopped'));
    assert.equal(events[0]!.cp_id, 'CP-042');
    assert.equal(events[1]!.status, 'OK');
  });
});

describe('self-test table', () => {
  it('aligns the columns', () => {
    const table = formatTable([
      { target: 'engine 127.0.0.1:5001', ok: true, result: 'OK', detail: 'answered OK in 2 ms' },
      { target: 'kafka k:9092', ok: false, result: 'FAIL', detail: 'no answer within 5000 ms' },
    ]);
    assert.equal(
      table,
      ['TARGET                 RESULT  DETAIL', 'engine 127.0.0.1:5001  OK      answered OK in 2 ms', 'kafka k:9092           FAIL    no answer within 5000 ms'].join('\n'),
    );
  });
});
