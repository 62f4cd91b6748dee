// The virtual charge point: a gpio-sim chip wired as relay, feedback contact, plug and e-stop; the
// Modbus meter simulator on a pty pair; the agent installed by scripts/install.sh (live path) with a
// config for that wiring. The contactor is simulated by a loop that copies the relay line's value
// into the feedback line's pull, as the auxiliary contact of a real contactor follows its coil.
import { spawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { CLI, createSimChip, fail, log, mustRun, STAGE, until } from './lib.mjs';

export const LINES = { relay: 0, feedback: 1, plug: 2, estop: 3 };
export const METER_LINK = '/run/charger-vm/agent-tty';
const METER_SIDE = '/run/charger-vm/meter';

function config(label, extra) {
  return `# charger-agent in the VM suite: the gpio-sim chip and the meter simulator on a pty
cpId: CP-VM-1
hardware: pi
gpio:
  relay: { chip: ${label}, line: ${LINES.relay} }
  relayFeedback: { chip: ${label}, line: ${LINES.feedback} }
  plugPresent: { chip: ${label}, line: ${LINES.plug} }
  emergencyStop: { chip: ${label}, line: ${LINES.estop}, activeLow: true }
meter:
  driver: modbus
  path: ${METER_LINK}
${extra}`;
}

// What an operator adds with `systemctl edit charger-agent` for this bench: the meter is on a pty
// (char-pts) instead of a USB adapter; restarts after 2 s instead of 10 (time in the suite); the
// start may take longer than 60 s, and the watchdog gets 30 s instead of 10: the emulated CPU is
// 50–100 times slower than this host, and every ping and STATUS= is a systemd-notify process that
// waits for PID 1 (seen: a 10 s watchdog fired while STATUS= changes were queued before a ping).
const DROP_IN = `[Service]
DeviceAllow=char-pts rw
RestartSec=2
WatchdogSec=30
TimeoutStartSec=600
`;

const NODE_MODULES = '/opt/charger-agent/node_modules';

/**
 * Config and drop-in first (an image builder's files, kept by install.sh), then install.sh --no-start
 * --skip-deps, then the production node_modules (pruned on the host by stage.sh) bound read-only into
 * /opt/charger-agent: what --deps copy would leave there, without its copy and `npm prune`, which
 * take minutes of emulated CPU. releaseNodeModules() undoes the binding before uninstall.sh.
 */
export async function install({ label, extraConfig = '' }) {
  mkdirSync('/etc/charger-agent', { recursive: true });
  writeFileSync('/etc/charger-agent/config.yaml', config(label, extraConfig));
  mkdirSync('/etc/systemd/system/charger-agent.service.d', { recursive: true });
  writeFileSync('/etc/systemd/system/charger-agent.service.d/vm-bench.conf', DROP_IN);
  const started = Date.now();
  const result = await mustRun('/bin/bash', [`${STAGE}/scripts/install.sh`, '--no-build', '--skip-deps', '--no-start'], { timeoutMs: 300_000 });
  log(`install.sh done in ${Date.now() - started} ms`);
  mkdirSync(NODE_MODULES, { recursive: true });
  await mustRun('/bin/mount', ['--bind', `${STAGE}/node_modules`, NODE_MODULES]);
  await mustRun('/bin/mount', ['-o', 'remount,bind,ro', NODE_MODULES]);
  log(`node_modules bound in ${Date.now() - started} ms`);
  return { installMs: Date.now() - started, installLog: result.stderr.split('\n').filter(Boolean) };
}

/** Lazily: the agent still running until uninstall.sh stops it keeps what it has open. */
export async function releaseNodeModules() {
  await mustRun('/bin/umount', ['--lazy', NODE_MODULES]);
}

/** The gpio-sim chip with every input at rest: contact open, no plug, e-stop released (active low). */
export async function createChip() {
  const chip = await createSimChip(4);
  chip.pull(LINES.feedback, false);
  chip.pull(LINES.plug, false);
  chip.pull(LINES.estop, true);
  return chip;
}

/**
 * After install.sh created the gpio group (sysusers): udev's rule (Raspberry Pi OS's, in
 * rootfs/etc/udev/rules.d) replayed for the chip, then wait until the group may export lines.
 */
export async function gpioGroupAccess() {
  await mustRun('/bin/udevadm', ['trigger', '--action=add', '--subsystem-match=gpio']);
  await until('group gpio on /sys/class/gpio/export (udev rule)', () => {
    const stat = statSync('/sys/class/gpio/export');
    return (stat.mode & 0o020) !== 0 && stat.gid !== 0;
  }, { timeoutMs: 120_000 });
}

/**
 * The contactor (contactor.mjs) at real-time priority: the feedback pull follows the relay line.
 * Resolves once it follows; `lags` collects how late it saw each change (its own scheduling lag).
 */
export async function startContactor(chip) {
  const script = new URL('./contactor.mjs', import.meta.url).pathname;
  const child = spawn('/usr/bin/chrt', ['-f', '20', '/usr/bin/node', script, chip.dir, String(LINES.relay), String(LINES.feedback)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lags = [];
  let ready = false;
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line === 'ready') ready = true;
      const lag = /lag_ms=([\d.]+)/.exec(line);
      if (lag) lags.push(Number(lag[1]));
    }
  });
  await until('the contactor follower', () => ready || child.exitCode !== null, { timeoutMs: 120_000 });
  if (!ready) fail(`the contactor follower exited ${child.exitCode}`);
  log('contactor follower started (SCHED_FIFO 20)');
  return { lags, stop: () => child.kill() };
}

/** socat pty pair (the agent's end readable by group dialout) and `charger-agent meter-sim` on the other end. */
export async function startMeter() {
  mkdirSync('/run/charger-vm', { recursive: true });
  const socat = spawn('/usr/bin/socat', [
    `pty,raw,echo=0,link=${METER_SIDE}`,
    `pty,raw,echo=0,link=${METER_LINK},group-late=dialout,perm-late=0660`,
  ], { stdio: 'inherit' });
  await until('the socat pty pair', () => {
    try {
      statSync(METER_LINK);
      statSync(METER_SIDE);
      return true;
    } catch {
      return false;
    }
  }, { timeoutMs: 20_000 });
  const sim = spawn('/usr/bin/node', [...CLI, 'meter-sim', '--path', METER_SIDE], { stdio: 'inherit' });
  log('meter simulator started');
  return () => {
    sim.kill();
    socat.kill();
  };
}

export async function mainPid() {
  const { stdout } = await mustRun('/bin/systemctl', ['show', '-P', 'MainPID', 'charger-agent']);
  return Number(stdout.trim());
}

export async function unitProperties(...names) {
  const { stdout } = await mustRun('/bin/systemctl', ['show', 'charger-agent', ...names.map((name) => `-p${name}`)]);
  return Object.fromEntries(stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}
