// A worn SD card as the slow-storage test (test/slow-storage.test.ts) and its bench rows
// (scripts/bench/slow-storage.ts) meet it: the LD_PRELOAD shim that slows every fsync/fdatasync
// (test/support/slow-fsync.c, built with cc), STATUS? polled every 20 ms and protocol lines timed from
// plain child processes, the sessions, e-stops and RCD trip driven through the protocol, and what the
// ledger and Kafka hold once the stall ends.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readLedger } from '../../agent/telemetry/store.js';
import { REPO_ROOT, type AgentProcess } from './agent-process.js';
import type { Delivered } from './kafka-topic.js';

export const STATUS_POLL_MS = 20;

/** Builds the shim to `outPath`; run the agent with LD_PRELOAD=outPath and SLOW_FSYNC_FILE (or SLOW_FSYNC_MS). */
export function buildSlowFsyncShim(outPath: string): void {
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', outPath, join(REPO_ROOT, 'test/support/slow-fsync.c'), '-ldl']);
}

/**
 * Polls STATUS? every 20 ms from a plain child process (no tsx, nothing else to do), so a pause in
 * the calling process (parsing the agent's log, GC) is never counted as the agent's answer time.
 * One connection per check, as the Monitor connects. The first 5 checks are not kept: they time the
 * poller's own start (loading and compiling its code, 7–19 ms on a loaded 2-core VM), not the agent.
 */
const POLLER = `
const net = require('node:net');
const took = [];
let warming = 5;
let running = true;
process.stdin.on('data', () => (running = false));
const once = () => new Promise((resolve, reject) => {
  const sentMs = performance.now();
  const socket = net.connect(Number(process.argv[1]), '127.0.0.1', () => socket.write('STATUS?\\n'));
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    answer += chunk;
    if (!answer.includes('\\n')) return;
    if (warming > 0) warming -= 1;
    else took.push(performance.now() - sentMs);
    socket.destroy();
    if (!/^(OK|KO)\\r?\\n/.test(answer)) reject(new Error('STATUS? answered ' + JSON.stringify(answer)));
    else resolve();
  });
  socket.on('error', reject);
});
(async () => {
  while (running) {
    await once();
    await new Promise((resolve) => setTimeout(resolve, Number(process.argv[2])));
  }
  process.stdout.write(JSON.stringify(took));
})().catch((error) => { console.error(error.message); process.exit(1); });
`;

/**
 * Sends protocol lines one at a time, each on its own connection, and times connect → answer. One
 * process for all of them, warmed by a few STATUS? first: the first connections of a fresh Node process
 * pay 7–19 ms (on a loaded 2-core VM) for loading and compiling its own code, which is not the agent's time.
 */
const LINE_TIMER = `
const net = require('node:net');
const readline = require('node:readline');
const send = (line) => new Promise((resolve, reject) => {
  const sentMs = performance.now();
  const socket = net.connect(Number(process.argv[1]), '127.0.0.1', () => socket.write(line + '\\n'));
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    answer += chunk;
    if (!answer.includes('\\n')) return;
    const ms = performance.now() - sentMs;
    socket.destroy();
    resolve({ answer: answer.trim(), ms });
  });
  socket.on('error', reject);
});
(async () => {
  for (let warm = 0; warm < 5; warm += 1) await send('STATUS?');
  process.stdout.write('ready\\n');
  for await (const line of readline.createInterface({ input: process.stdin })) process.stdout.write(JSON.stringify(await send(line)) + '\\n');
})().catch((error) => { console.error(error.message); process.exit(1); });
`;

export interface LineTimer {
  /** Sends one line from the timer process; resolves with the answer and connect → answer in ms. */
  time(line: string): Promise<{ answer: string; ms: number }>;
  stop(): Promise<void>;
}

/** Starts the timer process for the agent's protocol port; resolves once it is warm. */
export async function startLineTimer(agent: AgentProcess): Promise<LineTimer> {
  const child = spawn(process.execPath, ['-e', LINE_TIMER, String(agent.healthPort)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const replies = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (what: string): Promise<string> => {
    const reply = await Promise.race([replies.next(), exited.then(() => undefined)]);
    if (!reply || reply.done) throw new Error(`the line timer exited before ${what}`);
    return reply.value;
  };
  assert.equal(await next('it was warm'), 'ready');
  return {
    time: async (line) => {
      child.stdin!.write(line + '\n');
      return JSON.parse(await next(`answering ${line}`)) as { answer: string; ms: number };
    },
    stop: async () => {
      child.stdin!.end();
      assert.equal(await exited, 0, 'the line timer got an answer to every line');
    },
  };
}

/** Starts polling STATUS? on a loopback port; stop() ends it and gives each round trip's duration in ms. */
export function pollStatus(port: number, everyMs = STATUS_POLL_MS): { stop: () => Promise<number[]> } {
  const child = spawn(process.execPath, ['-e', POLLER, String(port), String(everyMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    stop: async () => {
      child.stdin.end('stop\n');
      assert.equal(await exited, 0, 'the STATUS? poller got an answer to every check');
      return JSON.parse(out) as number[];
    },
  };
}

async function expectAck(agent: AgentProcess, line: string): Promise<void> {
  assert.equal(await agent.send(line), `ACK#${line}`);
}

/** A driver authorized and a vehicle plugged in, once the point is free; resolves once energy flows. */
export async function chargingSession(agent: AgentProcess, driver: string): Promise<void> {
  await agent.until((info) => info.state === 'Available' && info.session === null && !info.plugged, 15_000);
  assert.equal(await agent.send(`AUTORIZAR_SUMINISTRO#${driver}`), 'ACK#AUTORIZAR_SUMINISTRO');
  await expectAck(agent, 'SIM#PLUG');
  await agent.until((info) => info.state === 'Charging' && (info.session?.kwh ?? 0) > 0, 15_000);
}

export interface ScenarioFigures {
  /** Round trip of every STATUS? from the store opening to the last session's end, in ms. */
  statusMs: number[];
  /** SIM#ESTOP#ON connect → ACK from a warm plain process, the relay already open when it is answered, in ms. */
  estopMs: number[];
  /** How long the store took to open in its worker, as the agent logged it. */
  storeOpenMs: number;
  /** Session ids from the agent's log. */
  started: string[];
  ended: string[];
}

/**
 * With STATUS? polled throughout: the store opening, one session ended by unplugging, `estops`
 * sessions each ended by an e-stop (timed), one ended by the protection device tripping.
 */
export async function driveSlowStorageScenario(agent: AgentProcess, estops: number): Promise<ScenarioFigures> {
  const poller = pollStatus(agent.healthPort);
  const opened = await agent.waitFor('store_opened', () => true, 120_000); // opened in its thread, after READY

  await chargingSession(agent, 'DRIVER-1');
  await expectAck(agent, 'SIM#UNPLUG');
  await agent.until((info) => info.state === 'Available' && info.session === null);

  const estopMs: number[] = [];
  const timer = await startLineTimer(agent);
  await chargingSession(agent, 'DRIVER-2');
  for (let press = 0; press < estops; press += 1) {
    // the relay is opened before the injection is answered
    const estop = await timer.time('SIM#ESTOP#ON');
    assert.equal(estop.answer, 'ACK#SIM#ESTOP#ON');
    estopMs.push(estop.ms);
    assert.equal((await agent.info()).relay.commanded, 'open');
    await expectAck(agent, 'SIM#ESTOP#OFF');
    if (press < estops - 1) {
      await expectAck(agent, 'SIM#UNPLUG');
      await chargingSession(agent, `DRIVER-E${press}`);
    }
  }
  await expectAck(agent, 'SIM#UNPLUG');
  await chargingSession(agent, 'DRIVER-3');
  await expectAck(agent, 'SIM#FAULT'); // the RCD trips mid-charge
  await agent.waitFor('fault_raised', (line) => line.fault === 'hardware_fault', 10_000);
  await agent.until((info) => info.session === null);
  await timer.stop();
  const statusMs = await poller.stop();

  const sessions = (event: string) => agent.lines.filter((line) => line.event === event).map((line) => String(line.session));
  return { statusMs, estopMs, storeOpenMs: Number(opened.open_ms), started: sessions('session_started'), ended: sessions('session_ended') };
}

/** Every started session on the topic: what is missing, what came twice, and whether seq runs 1, 2, 3 … */
export function deliveryCheck(started: readonly string[], messages: readonly Delivered[]): { missing: string[]; duplicated: string[]; seqInOrder: boolean } {
  const missing: string[] = [];
  const duplicated: string[] = [];
  const seen = new Map<string, number>();
  for (const message of messages) seen.set(message.id, (seen.get(message.id) ?? 0) + 1);
  for (const [id, count] of seen) if (count > 1) duplicated.push(`message ${id} ×${count}`);
  for (const id of started) {
    for (const type of ['SESSION_STARTED', 'SUPPLY_END']) {
      const count = messages.filter((m) => m.type === type && m.session_id === id).length;
      if (count === 0) missing.push(`${type} of ${id}`);
      if (count > 1) duplicated.push(`${type} of ${id} ×${count}`);
    }
  }
  return { missing, duplicated, seqInOrder: messages.every((m, index) => m.seq === index + 1) };
}

/** The ledger against the sessions started: sessions missing from it, not started, or not closed in it. */
export function ledgerCheck(stateDir: string, started: readonly string[]): { missing: string[]; unexpected: string[]; notClosed: string[] } {
  const ledger = readLedger(stateDir, Math.max(100, started.length * 2)) ?? [];
  const ids = new Set(ledger.map((s) => s.id));
  return {
    missing: started.filter((id) => !ids.has(id)),
    unexpected: [...ids].filter((id) => !started.includes(id)),
    notClosed: ledger.filter((s) => s.endedAt === undefined || s.endReason === undefined).map((s) => s.id),
  };
}
