// The checks of one boot: install and start (1), a session and the e-stop on kernel GPIO lines (2),
// a stopped or killed agent (3), the journal and diagnose (4), uninstall (6).
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createChip, gpioGroupAccess, install, LINES, mainPid, releaseNodeModules, startContactor, startMeter, unitProperties } from './device.mjs';
import { CLI, ctl, fail, info, JournalFollower, log, mustRun, run, STAGE, until } from './lib.mjs';

const RELAY_SAFE_IN_UNIT = () => /^ExecStopPost=.*relay-safe/m.test(readFileSync('/etc/systemd/system/charger-agent.service', 'utf8'));

/** Spins on the relay line's value (no await: nothing else runs) until it reads `closed`; ms since t0. */
function spinUntilRelay(chip, closed, t0, timeoutMs) {
  for (;;) {
    if (chip.value(LINES.relay) === closed) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return undefined;
  }
}

/** Polls the relay line every ms (the event loop keeps running) until it reads `closed`. */
async function waitRelay(chip, closed, t0, timeoutMs) {
  for (;;) {
    if (chip.value(LINES.relay) === closed) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return undefined;
    await sleep(1);
  }
}

async function ctlOk(...args) {
  const result = await ctl(...args);
  if (result.code !== 0) fail(`charger-agent ctl ${args.join(' ')} exited ${result.code}: ${result.stdout}${result.stderr}`);
  return result.stdout.trim();
}

/** authorize + plug in: waits for the charging state with the relay line high. */
async function startCharging(chip, journal, driver) {
  const mark = journal.mark();
  const reply = await ctlOk('authorize', driver);
  chip.pull(LINES.plug, true);
  const started = await journal.waitFor('session_started', (e) => e.event === 'session_started', { from: mark, timeoutMs: 30_000 });
  await until('the relay line driven high', () => chip.value(LINES.relay), { timeoutMs: 10_000 });
  await until('state charging', async () => (await info()).state === 'Charging', { timeoutMs: 20_000, everyMs: 200 });
  return { reply, session: started.fields.session };
}

export async function checkSuite(results) {
  const journal = new JournalFollower('charger-agent.service');
  let chip;
  let contactor = { lags: [], stop: () => {} };
  let stopMeter = () => {};
  const state = {};

  await results.check('install_and_start', async () => {
    // the chip first, so that install.sh's relay-safe --check finds the relay line
    chip = await createChip();
    if (chip.label !== 'gpio-sim.0-node0') fail(`the gpio-sim chip is labelled ${chip.label}, the config says gpio-sim.0-node0`);
    const installed = await install({ label: chip.label });
    await gpioGroupAccess();
    contactor = await startContactor(chip);
    stopMeter = await startMeter();
    const mark = journal.mark();
    const t0 = Date.now();
    await mustRun('/bin/systemctl', ['start', 'charger-agent'], { timeoutMs: 600_000 });
    const startMs = Date.now() - t0;
    const props = await unitProperties('ActiveState', 'SubState', 'Type', 'NotifyAccess', 'MainPID', 'WatchdogUSec');
    const ready = await journal.waitFor('agent_ready', (e) => e.event === 'agent_ready', { from: mark, timeoutMs: 10_000 });
    const gpio = journal.entries.slice(mark).find((e) => e.event === 'gpio_opened');
    const security = await run('/usr/bin/systemd-analyze', ['security', '--no-pager', 'charger-agent.service']);
    const exposure = /Overall exposure level for charger-agent\.service: ([\d.]+)/.exec(security.stdout)?.[1];
    results.figure('startToActiveMs', startMs);
    state.base = chip.base;
    return {
      ...installed,
      startMs,
      unit: props,
      readyEvent: ready.event,
      gpioOpened: gpio?.fields,
      chip: { label: chip.label, base: chip.base },
      relayLineAtRest: chip.value(LINES.relay),
      exposure: exposure === undefined ? undefined : Number(exposure),
      securityOutput: exposure === undefined ? security.stdout + security.stderr : undefined,
    };
  });

  await results.check('session_and_estop', async () => {
    const first = await startCharging(chip, journal, 'DRIVER-VM-1');
    // let the meter register move: readings every second
    const charging = await until('energy in the session', async () => {
      const snapshot = await info();
      return snapshot.session && snapshot.session.kwh > 0 ? snapshot : undefined;
    }, { timeoutMs: 30_000, everyMs: 500 });
    let mark = journal.mark();
    const tUnplug = performance.now();
    chip.pull(LINES.plug, false);
    const unplugToLineMs = await waitRelay(chip, false, tUnplug, 5_000);
    const ended = await journal.waitFor('session_ended', (e) => e.event === 'session_ended', { from: mark, timeoutMs: 20_000 });

    const second = await startCharging(chip, journal, 'DRIVER-VM-2');
    mark = journal.mark();
    const tPress = performance.now();
    chip.pull(LINES.estop, false); // active low: pressed
    const estopToLineMs = spinUntilRelay(chip, false, tPress, 5_000);
    const fault = await journal.waitFor('fault_raised emergency_stop', (e) => e.event === 'fault_raised' && e.fields.fault === 'emergency_stop', { from: mark, timeoutMs: 20_000 });
    const estopEnded = await journal.waitFor('session_ended after the e-stop', (e) => e.event === 'session_ended', { from: mark, timeoutMs: 20_000 });
    chip.pull(LINES.estop, true);
    chip.pull(LINES.plug, false);
    await journal.waitFor('fault_cleared emergency_stop', (e) => e.event === 'fault_cleared' && e.fields.fault === 'emergency_stop', { from: mark, timeoutMs: 20_000 });
    await until('state available again', async () => (await info()).state === 'Available', { timeoutMs: 20_000, everyMs: 300 });
    if (estopToLineMs !== undefined) results.figure('estopEdgeToLineMs', Number(estopToLineMs.toFixed(2)));
    return {
      authorizeReply: first.reply,
      firstSession: first.session,
      kwhWhileCharging: charging.session.kwh,
      unplugToLineMs,
      firstEnded: ended.fields,
      secondSession: second.session,
      estopToLineMs,
      estopFault: { priority: fault.priority, fields: fault.fields },
      estopEnded: estopEnded.fields,
    };
  });

  await results.check('dead_agent', async () => {
    const relaySafe = RELAY_SAFE_IN_UNIT();
    const out = { relaySafeInUnit: relaySafe };
    // kill -STOP: the watchdog (WatchdogSec) kills it, Restart= starts a new one
    {
      const before = await unitProperties('NRestarts', 'MainPID');
      await startCharging(chip, journal, 'DRIVER-VM-3');
      const mark = journal.mark();
      const pid = Number(before.MainPID);
      const tStop = performance.now();
      process.kill(pid, 'SIGSTOP');
      const killed = await journal.waitFor('the watchdog kill', (e) => e.manager && /[Ww]atchdog timeout/.test(e.message), { from: mark, timeoutMs: 60_000 });
      const tDeath = performance.now();
      const lineOpenAfterDeathMs = await waitRelay(chip, false, tDeath, 60_000);
      await journal.waitFor('agent_ready after the restart', (e) => e.event === 'agent_ready', { from: mark, timeoutMs: 90_000 });
      const after = await unitProperties('NRestarts', 'MainPID', 'ActiveState', 'Result');
      out.watchdog = {
        stoppedToKillMs: Math.round(tDeath - tStop),
        killMessage: killed.message,
        lineOpenAfterDeathMs,
        restartsBefore: Number(before.NRestarts),
        restartsAfter: Number(after.NRestarts),
        newPid: Number(after.MainPID) !== pid && Number(after.MainPID) > 0,
        activeAfter: after.ActiveState,
      };
      chip.pull(LINES.plug, false);
      await until('state available after the watchdog restart', async () => (await info()).state === 'Available', { timeoutMs: 30_000, everyMs: 300 });
    }
    // kill -9 and an OOM-style kill (SIGKILL from the manager): the line must fall open
    for (const how of ['kill -9', 'systemctl kill -s KILL']) {
      await startCharging(chip, journal, `DRIVER-VM-${how === 'kill -9' ? 4 : 5}`);
      const mark = journal.mark();
      const pid = await mainPid();
      const tDeath = performance.now();
      if (how === 'kill -9') process.kill(pid, 'SIGKILL');
      else await mustRun('/bin/systemctl', ['kill', '-s', 'KILL', 'charger-agent']);
      const lineOpenAfterDeathMs = await waitRelay(chip, false, tDeath, 60_000);
      const startedBeforeOpen = journal.entries.slice(mark).some((e) => e.event === 'agent_started');
      await journal.waitFor('agent_ready after the restart', (e) => e.event === 'agent_ready', { from: mark, timeoutMs: 90_000 });
      const forced = journal.entries.slice(mark).find((e) => e.event === 'relay_forced_open');
      out[how === 'kill -9' ? 'kill9' : 'oomKill'] = { lineOpenAfterDeathMs, startedBeforeOpen, relayForcedOpen: forced ? { priority: forced.priority, fields: forced.fields } : undefined };
      chip.pull(LINES.plug, false);
      await until('state available after the restart', async () => (await info()).state === 'Available', { timeoutMs: 30_000, everyMs: 300 });
    }
    results.figure('deadProcessToLineOpenMs', { watchdog: out.watchdog.lineOpenAfterDeathMs, kill9: out.kill9.lineOpenAfterDeathMs, oomKill: out.oomKill.lineOpenAfterDeathMs, relaySafeInUnit: relaySafe });
    return out;
  });

  await results.check('journal_and_diagnose', async () => {
    const warnings = await mustRun('/bin/journalctl', ['-u', 'charger-agent', '-p', 'warning', '-o', 'json', '--no-pager']);
    const entries = warnings.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)).map((record) => {
      let event;
      try {
        event = JSON.parse(record.MESSAGE).event;
      } catch {
        // PID 1's lines are prose
      }
      return { priority: Number(record.PRIORITY), event, message: typeof record.MESSAGE === 'string' ? record.MESSAGE.slice(0, 300) : '', manager: record._PID === '1' };
    });
    const diagnose = await run('/usr/bin/node', [...CLI, 'diagnose', '--json'], { timeoutMs: 120_000 });
    const text = await run('/usr/bin/node', [...CLI, 'diagnose'], { timeoutMs: 120_000 });
    let report;
    try {
      report = JSON.parse(diagnose.stdout);
    } catch {
      fail(`diagnose --json printed no JSON (exit ${diagnose.code}): ${diagnose.stderr}`);
    }
    return {
      warnings: entries,
      diagnoseExit: diagnose.code,
      problems: report.problems.map((p) => ({ kind: p.kind, severity: p.severity, title: p.title, count: p.count, actions: p.actions })),
      faults: report.faults,
      lifecycle: { starts: report.lifecycle.starts, restarts: report.lifecycle.restarts, watchdogKills: report.lifecycle.watchdogKills, crashes: report.lifecycle.crashes },
      diagnoseText: text.stdout.split('\n').slice(0, 60),
    };
  });

  contactor.stop();
  results.figure('contactorLagMs', { changes: contactor.lags.length, max: Math.max(0, ...contactor.lags) });
  stopMeter();
  await results.check('uninstall', async () => {
    if (!existsSync('/opt/charger-agent/dist/agent/cli.js')) fail('nothing to uninstall: the install check did not install the agent');
    await releaseNodeModules();
    const result = await mustRun('/bin/bash', [`${STAGE}/scripts/uninstall.sh`, '--purge'], { timeoutMs: 120_000 });
    const paths = [
      '/opt/charger-agent',
      '/etc/systemd/system/charger-agent.service',
      '/etc/systemd/system/charger-monitor.service',
      '/etc/systemd/system/charger-agent.service.d',
      '/etc/systemd/system/multi-user.target.wants/charger-agent.service',
      '/etc/systemd/system/multi-user.target.wants/charger-monitor.service',
      '/usr/lib/sysusers.d/charger-agent.conf',
      '/etc/charger-agent',
      '/var/lib/charger-agent',
    ];
    const left = paths.filter((path) => existsSync(path));
    const user = await run('/usr/bin/getent', ['passwd', 'charger-agent']);
    const unit = await run('/bin/systemctl', ['show', '-P', 'LoadState', 'charger-agent']);
    return { log: result.stderr.split('\n').filter(Boolean), left, userLeft: user.code === 0, loadState: unit.stdout.trim() };
  });
  journal.stop();
  log('checks finished');
  void CLI;
}
