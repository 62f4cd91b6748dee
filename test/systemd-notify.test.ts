/**
 * sd_notify end to end: the real notifier runs the real systemd-notify against a real AF_UNIX
 * datagram socket set as NOTIFY_SOCKET, as PID 1 would provide it.
 *
 * The receiver is a few lines of Perl (perl-base is Essential on Debian, so it is on every CI
 * runner and Pi) rather than socat: systemd-notify sends BARRIER=1 with a pipe fd after each
 * message and waits until the receiver closes it (that is how it avoids the sd_notify race).
 * PID 1 closes it; `socat UNIX-RECV` keeps every fd it receives, so each systemd-notify would wait
 * its full 5 s and fail. Perl's recv() passes no control buffer, so the kernel closes the fd at
 * once, as PID 1 does.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger } from '../agent/logging/logger.js';
import { createNotifier, type Liveness } from '../agent/systemd/notify.js';
import { startAgent as startDaemon, stopAllAgents } from './support/agent-process.js';

const RECEIVER_PL = String.raw`
use strict; use warnings; use Socket;
my $path = shift;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
unlink $path;
bind($s, pack_sockaddr_un($path)) or die "bind $path: $!";
$| = 1;
print "listening\n";
while (defined(recv($s, my $buf, 65536, 0))) { $buf =~ s/\\/\\\\/g; $buf =~ s/\n/\\n/g; print "$buf\n"; }
die "recv: $!";
`;

const WAIT_LIMIT_MS = 20_000;

/** One datagram as the lines PID 1 would parse. */
type Datagram = string[];

interface Receiver {
  path: string;
  datagrams: Datagram[];
  /** Resolves once predicate holds for what arrived; rejects after WAIT_LIMIT_MS saying what it saw. */
  waitFor(what: string, predicate: (datagrams: Datagram[]) => boolean): Promise<void>;
  close(): void;
}

async function startReceiver(path: string): Promise<Receiver> {
  const child = spawn('perl', ['-e', RECEIVER_PL, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const datagrams: Datagram[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout });
  const listening = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`notify receiver exited (${code}): ${stderr}`)));
    lines.on('line', (line) => {
      if (line === 'listening') return resolve();
      datagrams.push(line.replace(/\\n/g, '\n').replace(/\\\\/g, '\\').split('\n'));
      for (const wake of waiters) wake();
    });
  });
  await listening;
  return {
    path,
    datagrams,
    waitFor(what, predicate) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(datagrams)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`waited ${WAIT_LIMIT_MS} ms for ${what}; received ${JSON.stringify(datagrams)}`));
        }, WAIT_LIMIT_MS);
        waiters.add(check);
        check();
      });
    },
    close: () => child.kill('SIGKILL'),
  };
}

const isPing = (datagram: Datagram) => datagram.includes('WATCHDOG=1');
const pingsAfter = (datagrams: Datagram[], index: number) => datagrams.slice(index + 1).filter(isPing).length;
const indexOf = (datagrams: Datagram[], line: string) => datagrams.findIndex((datagram) => datagram.includes(line));
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An awaited event that never comes fails the test with its name instead of hanging it. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${WAIT_LIMIT_MS} ms for ${what}`)), WAIT_LIMIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

let dir: string;
const receivers: Receiver[] = [];
const children: ChildProcess[] = [];

before(async () => {
  for (const tool of ['systemd-notify', 'perl']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
    assert.ok(found, `${tool} is needed for the sd_notify tests (apt-get install systemd perl-base)`);
  }
  dir = await mkdtemp(join(tmpdir(), 'charger-agent-notify-'));
});

after(async () => {
  await stopAllAgents();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const receiver of receivers) receiver.close();
  await rm(dir, { recursive: true, force: true });
});

async function receiver(name: string): Promise<Receiver> {
  const started = await startReceiver(join(dir, name));
  receivers.push(started);
  return started;
}

describe('sd_notify over a real NOTIFY_SOCKET', () => {
  it('delivers READY=1, WATCHDOG=1 every WATCHDOG_USEC/2, and STOPPING=1; pings stop while a part is stalled', { timeout: 90_000 }, async () => {
    const socket = await receiver('agent.sock');
    const logLines: string[] = [];
    let onStalled = () => {};
    const stalledLogged = new Promise<void>((resolve) => (onStalled = resolve));
    const log = createLogger({
      pretty: false,
      write: (line) => {
        logLines.push(line);
        if (line.includes('"watchdog_stalled"')) onStalled();
      },
    });
    let alive: Liveness = { ok: true };
    const watchdogUsec = 1_000_000;
    const intervalMs = watchdogUsec / 2000;
    const notifier = createNotifier({ log, env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: String(watchdogUsec) }, liveness: () => alive });
    notifier.start();
    assert.equal(notifier.watchdogIntervalMs, intervalMs);

    await notifier.ready('Available');
    await socket.waitFor('READY=1', (got) => indexOf(got, 'READY=1') >= 0);
    const ready = socket.datagrams[indexOf(socket.datagrams, 'READY=1')]!;
    assert.ok(ready.includes(`MAINPID=${process.pid}`), `READY=1 names our pid: ${JSON.stringify(ready)}`);
    assert.ok(ready.includes('STATUS=Available'));

    // An observation window of 6 intervals: WATCHDOG_USEC/2 gives 6 pings (5 when the last one is
    // still on its way); WATCHDOG_USEC would give 3, WATCHDOG_USEC/3 would give 9.
    const windowMs = 6 * intervalMs;
    const before = socket.datagrams.filter(isPing).length;
    await delay(windowMs);
    const inWindow = socket.datagrams.filter(isPing).length - before;
    assert.ok(inWindow >= 5 && inWindow <= 7, `expected 5..7 pings in ${windowMs} ms at ${intervalMs} ms, got ${inWindow}`);

    alive = { ok: false, stalled: ['meter'] };
    await within(stalledLogged, 'the watchdog_stalled log line');
    // Messages go out in order: every ping sent before the stall arrives before this marker.
    await notifier.status('marker: meter stalled');
    await socket.waitFor('the marker', (got) => indexOf(got, 'STATUS=marker: meter stalled') >= 0);
    const marker = indexOf(socket.datagrams, 'STATUS=marker: meter stalled');

    // The window for "no pings" is measured by a healthy notifier on the same event loop.
    const control = await receiver('control.sock');
    const healthy = createNotifier({ log: createLogger({ write: () => {} }), env: { NOTIFY_SOCKET: control.path, WATCHDOG_USEC: String(watchdogUsec) } });
    healthy.start();
    await healthy.ready();
    await control.waitFor('4 pings from the healthy notifier', (got) => got.filter(isPing).length >= 4);
    await healthy.stop();
    assert.equal(pingsAfter(socket.datagrams, marker), 0, 'no WATCHDOG=1 while the meter worker is stalled');
    const stalled = logLines.filter((line) => line.includes('"watchdog_stalled"'));
    assert.equal(stalled.length, 1);
    assert.match(stalled[0]!, /^<3>\{"event":"watchdog_stalled","stalled":\["meter"\]/);

    alive = { ok: true };
    await socket.waitFor('pings to resume', (got) => pingsAfter(got, marker) >= 1);

    await notifier.stopping('stopping');
    await socket.waitFor('STOPPING=1', (got) => indexOf(got, 'STOPPING=1') >= 0);
    await notifier.stop();
    assert.ok(!logLines.some((line) => line.includes('sd_notify_failed')), logLines.join('\n'));
  });

  it('stops pinging when the event loop of the agent is frozen', { timeout: 90_000 }, async () => {
    const repo = (path: string) => pathToFileURL(fileURLToPath(new URL(`../${path}`, import.meta.url))).href;
    const script = join(dir, 'frozen-agent.mts');
    await writeFile(
      script,
      `
import { createLogger } from ${JSON.stringify(repo('agent/logging/logger.ts'))};
import { createNotifier } from ${JSON.stringify(repo('agent/systemd/notify.ts'))};
import { beatFromEventLoop, createHeartbeats } from ${JSON.stringify(repo('agent/systemd/liveness.ts'))};

const log = createLogger({ pretty: false, write: (line) => process.stderr.write(line + '\\n') });
const heartbeats = createHeartbeats({ main_loop: 1000 });
beatFromEventLoop(heartbeats, 'main_loop', 50);
const notifier = createNotifier({ log, liveness: () => heartbeats.check() });
notifier.start();
await notifier.ready('up');
process.stdout.write('ready\\n');
process.stdin.once('data', async () => {
  await notifier.status('freezing');
  process.stdout.write('frozen\\n');
  for (;;) {}
});
`,
    );
    const startAgent = (socketPath: string) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000' },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      const lines = createInterface({ input: child.stdout! });
      const said = (word: string) =>
        new Promise<void>((resolve, reject) => {
          lines.on('line', (line) => line === word && resolve());
          child.once('exit', (code) => reject(new Error(`agent exited (${code}) before "${word}"`)));
        });
      return { child, said };
    };

    const frozenSocket = await receiver('frozen.sock');
    const controlSocket = await receiver('frozen-control.sock');
    const frozen = startAgent(frozenSocket.path);
    const control = startAgent(controlSocket.path);
    await within(Promise.all([frozen.said('ready'), control.said('ready')]), 'both agents to be ready');
    await frozenSocket.waitFor('3 pings before the freeze', (got) => got.filter(isPing).length >= 3);

    const frozenSaid = frozen.said('frozen');
    frozen.child.stdin!.write('freeze\n');
    await within(frozenSaid, 'the agent to freeze');
    await frozenSocket.waitFor('the freeze marker', (got) => indexOf(got, 'STATUS=freezing') >= 0);
    const marker = indexOf(frozenSocket.datagrams, 'STATUS=freezing');

    const controlPings = controlSocket.datagrams.filter(isPing).length;
    await controlSocket.waitFor('10 more pings from the healthy agent', (got) => got.filter(isPing).length >= controlPings + 10);
    assert.equal(pingsAfter(frozenSocket.datagrams, marker), 0, 'a frozen event loop sends no WATCHDOG=1');
    assert.equal(frozen.child.exitCode, null, 'the frozen agent is still running: only the watchdog can get it restarted');
  });

  it('the real daemon while charging forks systemd-notify only for WATCHDOG=1 every WatchdogSec/2: STATUS= changes with the state, not with the kWh', { timeout: 90_000 }, async () => {
    const socket = await receiver('daemon.sock');
    const watchdogUsec = 2_000_000;
    const intervalMs = watchdogUsec / 2000;
    const agent = await startDaemon({ env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: String(watchdogUsec) } });
    await socket.waitFor('READY=1 with STATUS=Available', (got) => got.some((d) => d.includes('READY=1') && d.includes('STATUS=Available')));

    assert.equal(await agent.send('AUTORIZAR_SUMINISTRO#DRIVER-NOTIFY'), 'ACK#AUTORIZAR_SUMINISTRO');
    assert.equal(await agent.send('SIM#PLUG'), 'ACK#SIM#PLUG');
    await socket.waitFor('STATUS=Charging', (got) => indexOf(got, 'STATUS=Charging') >= 0);
    const first = await agent.until((info) => info.state === 'Charging' && (info.session?.kwh ?? 0) > 0, 10_000);

    // An observation window of 4 watchdog intervals while the session's kWh keep growing.
    const from = socket.datagrams.length;
    await delay(4 * intervalMs);
    // each systemd-notify run sends its message and then BARRIER=1
    const window = socket.datagrams.slice(from).filter((datagram) => !(datagram.length === 1 && datagram[0] === 'BARRIER=1'));
    const last = await agent.info();
    assert.equal(last.state, 'Charging');
    assert.ok(last.session!.kwh > first.session!.kwh, 'the energy grew during the window');
    assert.deepEqual(
      window.filter((datagram) => !(datagram.length === 1 && datagram[0] === 'WATCHDOG=1')),
      [],
      'nothing but WATCHDOG=1 while the state stays Charging',
    );
    assert.ok(window.length >= 3 && window.length <= 6, `expected 3..6 pings in ${4 * intervalMs} ms at ${intervalMs} ms, got ${window.length}`);
    const message = `${window.length} systemd-notify messages in ${4 * intervalMs} ms of charging (WatchdogSec=${watchdogUsec / 1e6} s)`;
    console.log(message);

    assert.equal(await agent.send('SIM#UNPLUG'), 'ACK#SIM#UNPLUG');
    await socket.waitFor('STATUS=Available after the unplug', (got) => got.slice(from).some((d) => d.includes('STATUS=Available')));
  });
});
