import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { createMemoryLogger } from '../logging/testing/memory-logger.js';
import { createNotifier, statusLine, watchdogIntervalMs, type Liveness } from './notify.js';
import { NotifyError, type NotifySender } from './notify-sender.js';

interface Sent {
  socket: string;
  lines: string[];
  mainPid?: number;
}

function recordingSender(): { send: NotifySender; sent: Sent[] } {
  const sent: Sent[] = [];
  const send: NotifySender = async (socket, lines, options) => {
    sent.push({ socket, lines, ...(options?.mainPid !== undefined ? { mainPid: options.mainPid } : {}) });
  };
  return { send, sent };
}

/** Lets the notifier's promise chain run after a mocked timer fired. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const pings = (sent: Sent[]) => sent.filter((message) => message.lines.includes('WATCHDOG=1')).length;

const SOCKET = '/run/systemd/notify';

describe('notifier', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setInterval'] }));
  afterEach(() => mock.timers.reset());

  it('is a no-op without NOTIFY_SOCKET', async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ log: createMemoryLogger(), env: { WATCHDOG_USEC: '1000000' }, send });
    notifier.start();
    await notifier.ready('Available');
    await notifier.status('Charging');
    mock.timers.tick(10_000);
    await notifier.stopping();
    await notifier.stop();
    assert.equal(notifier.enabled, false);
    assert.deepEqual(sent, []);
  });

  it('sends READY=1 with our MAINPID, then STATUS and STOPPING=1 in order', async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ log: createMemoryLogger(), env: { NOTIFY_SOCKET: SOCKET }, send, pid: 4242 });
    notifier.start();
    void notifier.ready('Available');
    void notifier.status('Charging\nkwh=1.2');
    await notifier.stopping('shutting down');
    await notifier.stop();
    assert.deepEqual(sent, [
      { socket: SOCKET, lines: ['READY=1', 'STATUS=Available'], mainPid: 4242 },
      { socket: SOCKET, lines: ['STATUS=Charging kwh=1.2'] },
      { socket: SOCKET, lines: ['STOPPING=1', 'STATUS=shutting down'] },
    ]);
  });

  it('sends STATUS= only when the text changes, so it may be called on every tick', async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ log: createMemoryLogger(), env: { NOTIFY_SOCKET: SOCKET }, send });
    notifier.start();
    await notifier.ready('Available');
    for (const text of ['Available', 'Available', 'Charging 1.2 kWh', 'Charging 1.2 kWh', 'Available']) await notifier.status(text);
    await notifier.stop();
    assert.deepEqual(
      sent.map((message) => message.lines),
      [['READY=1', 'STATUS=Available'], ['STATUS=Charging 1.2 kWh'], ['STATUS=Available']],
    );
  });

  it('replaces a STATUS= that PID 1 has not taken yet instead of queueing every tick', async () => {
    const sent: string[][] = [];
    const release: Array<() => void> = [];
    const send: NotifySender = (_socket, lines) => {
      sent.push(lines);
      return new Promise<void>((resolve) => release.push(resolve));
    };
    const notifier = createNotifier({ log: createMemoryLogger(), env: { NOTIFY_SOCKET: SOCKET }, send });
    notifier.start();
    const first = notifier.status('Charging 0.1 kWh');
    await settle();
    const later = [2, 3, 4, 5].map((tenths) => notifier.status(`Charging 0.${tenths} kWh`));
    release.shift()!();
    await first;
    await settle();
    release.shift()!();
    await Promise.all(later);
    await notifier.stop();
    assert.deepEqual(sent, [['STATUS=Charging 0.1 kWh'], ['STATUS=Charging 0.5 kWh']]);
  });

  it('pings WATCHDOG=1 every WATCHDOG_USEC/2 once ready', async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ log: createMemoryLogger(), env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '10000000' }, send });
    notifier.start();
    assert.equal(notifier.watchdogIntervalMs, 5000);
    mock.timers.tick(20_000);
    await settle();
    assert.equal(pings(sent), 0, 'no pings before READY=1: systemd arms the watchdog when start-up completes');
    await notifier.ready();
    mock.timers.tick(4999);
    await settle();
    assert.equal(pings(sent), 0);
    mock.timers.tick(1);
    await settle();
    assert.equal(pings(sent), 1);
    for (let i = 0; i < 3; i += 1) {
      mock.timers.tick(5000);
      await settle();
    }
    assert.equal(pings(sent), 4);
    await notifier.stop();
    mock.timers.tick(20_000);
    await settle();
    assert.equal(pings(sent), 4, 'stop() ends the pings');
  });

  it('does not ping without WATCHDOG_USEC, or when WATCHDOG_PID names another process', async () => {
    for (const env of [{ NOTIFY_SOCKET: SOCKET }, { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000', WATCHDOG_PID: '1' }]) {
      const { send, sent } = recordingSender();
      const notifier = createNotifier({ log: createMemoryLogger(), env, send, pid: 4242 });
      notifier.start();
      await notifier.ready();
      mock.timers.tick(60_000);
      await settle();
      assert.equal(pings(sent), 0, JSON.stringify(env));
      await notifier.stop();
    }
  });

  it('stops pinging while a part is stalled, logs it once naming the part, and resumes after', async () => {
    const { send, sent } = recordingSender();
    const log = createMemoryLogger();
    let alive: Liveness = { ok: true };
    const notifier = createNotifier({ log, env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }, send, liveness: () => alive });
    notifier.start();
    await notifier.ready();
    mock.timers.tick(1000);
    await settle();
    assert.equal(pings(sent), 1);

    alive = { ok: false, stalled: ['meter'] };
    for (let i = 0; i < 5; i += 1) {
      mock.timers.tick(1000);
      await settle();
    }
    assert.equal(pings(sent), 1, 'no ping while the meter worker is stalled');
    const stalledLines = log.lines.filter((line) => line.event === 'watchdog_stalled');
    assert.equal(stalledLines.length, 1);
    assert.equal(stalledLines[0]!.priority, 'err');
    assert.deepEqual(stalledLines[0]!.fields.stalled, ['meter']);
    assert.equal(stalledLines[0]!.fields.watchdog_ms, 2000);

    alive = { ok: true };
    mock.timers.tick(1000);
    await settle();
    assert.equal(pings(sent), 2);
    assert.equal(log.lines.filter((line) => line.event === 'watchdog_resumed').length, 1);
    await notifier.stop();
  });

  it('keeps pinging after STOPPING=1 even when the watched parts stop', async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({
      log: createMemoryLogger(),
      env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' },
      send,
      liveness: () => ({ ok: false, stalled: ['meter'] }),
    });
    notifier.start();
    await notifier.ready();
    await notifier.stopping();
    for (let i = 0; i < 3; i += 1) {
      mock.timers.tick(1000);
      await settle();
    }
    assert.equal(pings(sent), 3);
    await notifier.stop();
  });

  it('treats a liveness check that throws as stalled', async () => {
    const { send, sent } = recordingSender();
    const log = createMemoryLogger();
    const notifier = createNotifier({
      log,
      env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' },
      send,
      liveness: () => {
        throw new Error('relay supervisor gone');
      },
    });
    notifier.start();
    await notifier.ready();
    mock.timers.tick(3000);
    await settle();
    assert.equal(pings(sent), 0);
    assert.match(String(log.lines.find((line) => line.event === 'watchdog_stalled')?.fields.stalled), /relay supervisor gone/);
    await notifier.stop();
  });

  it('does not queue a ping behind one that PID 1 has not taken yet', async () => {
    const sent: string[][] = [];
    const release: Array<() => void> = [];
    const send: NotifySender = (_socket, lines) => {
      sent.push(lines);
      return new Promise<void>((resolve) => release.push(resolve));
    };
    const notifier = createNotifier({ log: createMemoryLogger(), env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }, send });
    notifier.start();
    const ready = notifier.ready();
    await settle();
    release.shift()!();
    await ready;
    for (let i = 0; i < 4; i += 1) {
      mock.timers.tick(1000);
      await settle();
    }
    assert.equal(sent.filter((lines) => lines.includes('WATCHDOG=1')).length, 1, 'one ping in flight covers the later ticks');
    release.shift()!();
    await settle();
    mock.timers.tick(1000);
    await settle();
    assert.equal(sent.filter((lines) => lines.includes('WATCHDOG=1')).length, 2, 'the next tick pings again once PID 1 took the last one');
    release.shift()!();
    await notifier.stop();
  });

  it('logs one line for a streak of failed sends, and again after a recovery', async () => {
    let failing = true;
    const send: NotifySender = async () => {
      if (failing) throw new NotifyError('SD_NOTIFY_FAILED', 'Connection refused');
    };
    const log = createMemoryLogger();
    const notifier = createNotifier({ log, env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }, send });
    notifier.start();
    await notifier.ready();
    for (let i = 0; i < 5; i += 1) {
      mock.timers.tick(1000);
      await settle();
    }
    const failures = () => log.lines.filter((line) => line.event === 'sd_notify_failed');
    assert.equal(failures().length, 1);
    assert.equal(failures()[0]!.priority, 'warning');
    assert.match(String(failures()[0]!.fields.error), /Connection refused/);
    failing = false;
    await notifier.status('ok');
    failing = true;
    await notifier.status('again');
    assert.equal(failures().length, 2);
    await notifier.stop();
  });

  it('gives up after one line when systemd-notify is missing, and the daemon runs on', async () => {
    let calls = 0;
    const send: NotifySender = async () => {
      calls += 1;
      throw new NotifyError('SD_NOTIFY_MISSING', 'systemd-notify not found');
    };
    const log = createMemoryLogger();
    const notifier = createNotifier({ log, env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }, send });
    notifier.start();
    await notifier.ready();
    mock.timers.tick(10_000);
    await settle();
    await notifier.stopping();
    assert.equal(calls, 1);
    assert.equal(notifier.enabled, false);
    assert.equal(log.lines.filter((line) => line.event === 'sd_notify_failed').length, 1);
    await notifier.stop();
  });
});

describe('watchdog interval', () => {
  it('is half of WATCHDOG_USEC, in ms', () => {
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '10000000' }, 1), 5000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '10000000', WATCHDOG_PID: '7' }, 7), 5000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 1), undefined);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 1), undefined);
  });

  it('keeps STATUS= on one line', () => {
    assert.equal(statusLine('a\r\nb\nc'), 'STATUS=a b c');
    assert.equal(statusLine('x'.repeat(500)).length, 'STATUS='.length + 200);
  });
});
