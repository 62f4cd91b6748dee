// The real agent (`charger-agent run --hardware sim`), the real monitor (`charger-agent monitor`)
// and a real Kafka: the monitor tells the central system on monitor-events when the engine dies,
// comes back, freezes, or reports a fault. Each test has its own cp_id, agent, and monitor.
//
// The time bounds are the issue's: they are measured from the moment the test acts on the agent to
// the `timestamp` the monitor put in its message (both this host's clock), and the message must
// also have arrived on Kafka.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { REPO_ROOT, agentCommand, startAgent, stopAllAgents, type AgentProcess } from './support/agent-process.js';
import { requireBrokers } from './support/services.js';

const exec = promisify(execFile);
const TOPIC = 'monitor-events';
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 1000;
const SLACK_MS = 500;

interface MonitorEvent {
  cp_id: string;
  monitor_id: string;
  action: string;
  status: string;
  engine_response: string;
  consecutive_failures: number;
  /** Epoch seconds, a float, as the original central system reads it. */
  timestamp: number;
  failure_type?: string;
  outage_ms?: number;
}

// ---------------------------------------------------------------- Kafka: everything on monitor-events

const brokers = requireBrokers().kafkaBrokers;
const received = new EventEmitter();
const events: MonitorEvent[] = [];
let consumer: Consumer;

before(async () => {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING, clientId: 'monitor-hil-reader' });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  consumer = kafka.consumer({ groupId: `monitor-hil-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const event = JSON.parse(message.value!.toString()) as MonitorEvent;
      assert.equal(message.key?.toString(), event.cp_id, 'keyed by cp_id');
      events.push(event);
      received.emit('event', event);
    },
  });
});

after(async () => {
  await stopAllMonitors();
  await stopAllAgents();
  await consumer?.disconnect();
});

/** The first event (already received or to come) for this charge point that matches. */
function kafkaEvent(cpId: string, match: (e: MonitorEvent) => boolean, timeoutMs = 20_000): Promise<MonitorEvent> {
  const matches = (e: MonitorEvent) => e.cp_id === cpId && match(e);
  const seen = events.find(matches);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      received.off('event', onEvent);
      reject(new Error(`no matching event for ${cpId} on ${TOPIC} within ${timeoutMs} ms; seen: ${JSON.stringify(events.filter((e) => e.cp_id === cpId).map((e) => [e.action, e.status]))}`));
    }, timeoutMs);
    function onEvent(e: MonitorEvent) {
      if (!matches(e)) return;
      clearTimeout(timer);
      received.off('event', onEvent);
      resolve(e);
    }
    received.on('event', onEvent);
  });
}

const isAction = (action: string) => (e: MonitorEvent) => e.action === action;

// ---------------------------------------------------------------- the monitor process

const monitors = new Set<ChildProcess>();

async function stopAllMonitors(): Promise<void> {
  await Promise.all(
    [...monitors].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }),
  );
}

/** `charger-agent monitor` on the agent's port, publishing to the test Kafka; resolves once it runs. */
async function startMonitor(cpId: string, port: number): Promise<{ child: ChildProcess; log: string[] }> {
  const args = [
    ...agentCommand(),
    'monitor',
    '--port', String(port),
    '--cp-id', cpId,
    '--monitor-id', 'hil-monitor',
    '--interval-ms', String(INTERVAL_MS),
    '--connect-timeout-ms', String(TIMEOUT_MS),
    '--read-timeout-ms', String(TIMEOUT_MS),
    '--kafka-brokers', brokers.join(','),
    '--mqtt-url', '',
  ];
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('CHARGER_')) delete env[key];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  monitors.add(child);
  const log: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => log.push(line));
  createInterface({ input: child.stderr! }).on('line', (line) => log.push(line));
  // Registered on Kafka means: the process runs, and its Kafka path works, before the test acts.
  await kafkaEvent(cpId, isAction('register_to_central'), 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\nmonitor output:\n${log.slice(-20).join('\n')}`);
  });
  await kafkaEvent(cpId, (e) => e.action === 'health_check' && e.status === 'OK');
  return { child, log };
}

// ---------------------------------------------------------------- helpers

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function newCpId(): string {
  return `CP-HIL-${randomBytes(3).toString('hex')}`;
}

async function agentOn(port: number, cpId: string, stateDir?: string): Promise<AgentProcess> {
  return startAgent({ args: ['--health-port', String(port), '--cp-id', cpId], stateDir });
}

function msSince(startMs: number, event: MonitorEvent): number {
  return event.timestamp * 1000 - startMs;
}

// ---------------------------------------------------------------- the behaviour

describe('monitor with the real agent and a real Kafka', () => {
  it('reports an agent that was killed, and its recovery when it is restarted', async (t) => {
    const cpId = newCpId();
    const port = await freePort();
    const agent = await agentOn(port, cpId);
    await startMonitor(cpId, port);

    const killedAtMs = Date.now();
    agent.kill('SIGKILL');
    await agent.exited;
    const failure = await kafkaEvent(cpId, isAction('report_engine_failure'));
    assert.equal(failure.failure_type, 'CONNECTION_ERROR');
    assert.equal(failure.consecutive_failures, 3);
    assert.equal(failure.monitor_id, 'hil-monitor');
    const detectMs = msSince(killedAtMs, failure);
    t.diagnostic(`kill → report_engine_failure: ${detectMs} ms`);
    assert.ok(detectMs <= 3 * INTERVAL_MS + SLACK_MS, `reported ${detectMs} ms after the kill (bound ${3 * INTERVAL_MS + SLACK_MS})`);

    const restarted = await agentOn(port, cpId, agent.stateDir);
    const readyAtMs = Date.now();
    const recovered = await kafkaEvent(cpId, isAction('engine_recovered'));
    assert.equal(recovered.status, 'OK');
    assert.equal(recovered.engine_response, 'OK');
    const recoverMs = msSince(readyAtMs, recovered);
    t.diagnostic(`agent ready → engine_recovered: ${recoverMs} ms`);
    assert.ok(recoverMs <= 2000, `recovery reported ${recoverMs} ms after the agent was ready (bound 2000)`);
    assert.equal(events.filter((e) => e.cp_id === cpId && e.action === 'report_engine_failure').length, 1, 'one report per outage');
    await restarted.stop();
    await agent.stop(); // the first process owns the state directory: this removes it
  });

  it('reports a frozen agent (SIGSTOP) as a TIMEOUT outage, and its recovery on SIGCONT', async (t) => {
    const cpId = newCpId();
    const port = await freePort();
    const agent = await agentOn(port, cpId);
    await startMonitor(cpId, port);

    const frozenAtMs = Date.now();
    agent.kill('SIGSTOP');
    try {
      const failure = await kafkaEvent(cpId, isAction('report_engine_failure'));
      assert.equal(failure.failure_type, 'TIMEOUT');
      const bound = 3 * (INTERVAL_MS + TIMEOUT_MS) + SLACK_MS;
      const detectMs = msSince(frozenAtMs, failure);
      t.diagnostic(`SIGSTOP → report_engine_failure (TIMEOUT): ${detectMs} ms`);
      assert.ok(detectMs <= bound, `reported ${detectMs} ms after SIGSTOP (bound ${bound})`);
    } finally {
      agent.kill('SIGCONT');
    }
    const recovered = await kafkaEvent(cpId, isAction('engine_recovered'));
    assert.equal(recovered.failure_type, 'TIMEOUT');
    assert.ok((recovered.outage_ms ?? 0) > 0);
  });

  it('reports a faulted agent (answering KO) with failure_type KO, and its recovery', async () => {
    const cpId = newCpId();
    const port = await freePort();
    const agent = await agentOn(port, cpId);
    await startMonitor(cpId, port);

    await exec(process.execPath, [...agentCommand(), 'ctl', '--port', String(port), 'fault'], { cwd: REPO_ROOT });
    const failure = await kafkaEvent(cpId, isAction('report_engine_failure'));
    assert.equal(failure.failure_type, 'KO');
    assert.equal(failure.status, 'KO');
    assert.equal(failure.engine_response, 'KO');

    await exec(process.execPath, [...agentCommand(), 'ctl', '--port', String(port), 'recover'], { cwd: REPO_ROOT });
    const recovered = await kafkaEvent(cpId, isAction('engine_recovered'));
    assert.equal(recovered.failure_type, 'KO');
    await agent.stop();
  });

  it('keeps running when the agent is gone from the start, and stops cleanly on SIGTERM', async () => {
    const cpId = newCpId();
    const port = await freePort();
    const agent = await agentOn(port, cpId);
    const { child, log } = await startMonitor(cpId, port);
    await agent.stop();
    await kafkaEvent(cpId, isAction('report_engine_failure'));
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, log.slice(-10).join('\n'));
    assert.ok(log.some((line) => line.includes('"event":"monitor_stopped"')));
  });
});
