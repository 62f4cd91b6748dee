// Guest-side plumbing of the VM suite: results over the 9p run share, processes, the agent's
// journal as a stream of events, the gpio-sim chip, the meter on a pty.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const RUN = '/vm-run';
export const STAGE = '/vm-payload/stage';
export const CLI = ['/opt/charger-agent/dist/agent/cli.js'];

export function uptimeS() {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** results.json, rewritten after every step (a power cut or a hang keeps what was done). */
export class Results {
  constructor(file, initial) {
    this.file = `${RUN}/${file}`;
    this.data = { checks: {}, figures: {}, ...initial };
    this.save();
  }
  save() {
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.data, null, 1));
    renameSync(`${this.file}.tmp`, this.file);
  }
  figure(name, value) {
    this.data.figures[name] = value;
    this.save();
  }
  /** Runs one check; what it returns is kept as its details. A failure is recorded, never thrown. */
  async check(name, fn) {
    const started = Date.now();
    log(`check ${name}: start`);
    try {
      const details = (await fn()) ?? {};
      this.data.checks[name] = { ok: true, ms: Date.now() - started, ...details };
    } catch (error) {
      this.data.checks[name] = { ok: false, ms: Date.now() - started, error: String(error?.stack ?? error), ...(error?.details ?? {}) };
    }
    log(`check ${name}: ${this.data.checks[name].ok ? 'ok' : `FAILED ${this.data.checks[name].error}`}`);
    this.save();
    return this.data.checks[name].ok;
  }
}

export function log(line) {
  process.stdout.write(`vm-check [${uptimeS().toFixed(1)}] ${line}\n`);
}

export function fail(message, details) {
  const error = new Error(message);
  error.details = details;
  throw error;
}

/** Runs a program; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(file, args = [], { timeoutMs = 120_000, env, input } = {}) {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: timeoutMs, env: env ?? process.env, maxBuffer: 64 << 20, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout: String(stdout), stderr: String(stderr), signal: error?.signal });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

export async function mustRun(file, args, options) {
  const result = await run(file, args, options);
  if (result.code !== 0) fail(`${file} ${args.join(' ')} exited ${result.code}${result.signal ? ` (${result.signal})` : ''}: ${result.stderr.slice(-2000)}${result.stdout.slice(-1000)}`);
  return result;
}

/** Polls until fn() returns a truthy value; fails with `what` at the deadline. */
export async function until(what, fn, { timeoutMs = 30_000, everyMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `journalctl -f -o json -u UNIT`: every entry of the unit (its own lines and PID 1's about it). */
export class JournalFollower {
  constructor(unit) {
    this.entries = [];
    this.waiters = new Set();
    this.child = spawn('journalctl', ['-f', '-o', 'json', '-n', '0', '-u', unit], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffer = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line) this.add(JSON.parse(line));
      }
    });
  }
  add(record) {
    const message = typeof record.MESSAGE === 'string' ? record.MESSAGE : '';
    let event;
    let fields = {};
    if (message.startsWith('{')) {
      try {
        ({ event, ...fields } = JSON.parse(message));
      } catch {
        // not one of ours
      }
    }
    const entry = { atMs: Date.now(), priority: Number(record.PRIORITY), pid: Number(record._PID), message, event, fields, manager: record._PID === '1' };
    this.entries.push(entry);
    for (const waiter of this.waiters) waiter(entry);
  }
  /** The first entry from index `from` on that matches; waits for it up to timeoutMs. */
  waitFor(what, match, { from = 0, timeoutMs = 60_000 } = {}) {
    const found = this.entries.slice(from).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (entry) => {
        if (!match(entry)) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(entry);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting in the journal for ${what}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
  mark() {
    return this.entries.length;
  }
  stop() {
    this.child.kill();
  }
}

/** One TCP protocol line to the agent (observation only; commands go through `charger-agent ctl`). */
export function protocolLine(line, port = 5001, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${line}`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(data.trim());
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write(`${line}\n`);
  });
}

export async function info() {
  return JSON.parse(await protocolLine('INFO'));
}

export function ctl(...args) {
  // an emulated CPU shared with other work answers slowly: 30 s instead of ctl's 3 s
  return run('/usr/bin/node', [...CLI, 'ctl', '--timeout-ms', '30000', ...args], { timeoutMs: 120_000 });
}

/**
 * A gpio-sim chip with `lines` lines (configfs). Its label is gpio-sim.<n>-node0; sim_gpio<i>/pull
 * drives input i, sim_gpio<i>/value shows what a consumer drives on line i.
 */
export async function createSimChip(lines) {
  await mustRun('/usr/sbin/modprobe', ['gpio-sim']);
  const config = '/sys/kernel/config/gpio-sim/charger-vm';
  mkdirSync(`${config}/bank0`, { recursive: true });
  writeFileSync(`${config}/bank0/num_lines`, String(lines));
  writeFileSync(`${config}/live`, '1');
  const device = readFileSync(`${config}/dev_name`, 'utf8').trim();
  const chipName = readFileSync(`${config}/bank0/chip_name`, 'utf8').trim();
  const dir = `/sys/devices/platform/${device}/${chipName}`;
  // gpio-sim names the chip after the device and its firmware node: gpio-sim.0-node0.
  const label = `${device}-node0`;
  const sysfs = await until(`a sysfs gpiochip labelled ${label}`, () => sysfsChipByLabel(label), { timeoutMs: 10_000 });
  return {
    device,
    chipName,
    label,
    base: sysfs.base,
    pull(line, high) {
      writeFileSync(`${dir}/sim_gpio${line}/pull`, high ? 'pull-up' : 'pull-down');
    },
    value(line) {
      return readFileSync(`${dir}/sim_gpio${line}/value`, 'utf8').trim() === '1';
    },
    dir,
  };
}

export function sysfsChipByLabel(label) {
  for (const name of readdirSync('/sys/class/gpio')) {
    if (!name.startsWith('gpiochip')) continue;
    if (readFileSync(`/sys/class/gpio/${name}/label`, 'utf8').trim() === label) {
      return { name, base: Number(readFileSync(`/sys/class/gpio/${name}/base`, 'utf8')) };
    }
  }
  return undefined;
}

export function pathExists(path) {
  return existsSync(path);
}
