// Figure 4, sample → Kafka ack, measured where the acknowledgement arrives: the real controller
// and telemetry pipeline in process, charging on simulated hardware at 1 Hz with Kafka and MQTT on,
// and the production Kafka sink wrapped so that each acknowledged send is timed. The pipeline
// takes its sink as an option (the seam its tests use); nothing else is replaced.
// Latency = ack time − the CONSUMO's ts (when its meter reading was taken, epoch ms).
// Runs for BENCH_ACK_SECONDS (the runner sets the charging window), dropping the first 5 s.
import { mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config/load.js';
import { Agent } from '../../agent/controller.js';
import { createLogger } from '../../agent/logging/logger.js';
import { createKafkaSink } from '../../agent/telemetry/kafka-sink.js';
import { createTelemetryPipeline } from '../../agent/telemetry/pipeline.js';
import type { MessageSink } from '../../agent/telemetry/types.js';
import { brokersFromEnv, DRIVER_ID } from './agents.js';
import type { AckPart } from './parts.js';
import { sleep, writePart } from './settings.js';
import { summarize } from './stats.js';

const WARMUP_MS = 5_000;

/** Epoch milliseconds with sub-millisecond resolution, re-anchored on Date.now() every 10 s. */
function preciseClock(): () => number {
  let anchoredAt = -Infinity;
  let offsetNs = 0n;
  return () => {
    if (Date.now() - anchoredAt > 10_000) {
      const start = Date.now();
      let now = start;
      while (now === start) now = Date.now();
      offsetNs = process.hrtime.bigint() - BigInt(now) * 1_000_000n;
      anchoredAt = now;
    }
    return Number(process.hrtime.bigint() - offsetNs) / 1e6;
  };
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_ACK_SECONDS ?? '60');
  const brokers = brokersFromEnv();
  const stateDir = mkdtempSync(join(tmpdir(), 'charger-bench-ack-'));
  const config = loadConfig({
    env: {},
    flags: { 'cp-id': 'BENCH-ACK', 'state-dir': stateDir, 'health-port': '0', 'http-port': '0', 'kafka-brokers': brokers.kafkaBrokers, 'mqtt-url': brokers.mqttUrl, hardware: 'sim' },
  });
  const devNull = openSync('/dev/null', 'w');
  const log = createLogger({ write: (line) => writeSync(devNull, line + '\n'), pretty: false, level: 'info' });

  const now = preciseClock();
  const acks: Array<{ sampleMs: number; ackMs: number }> = [];
  const kafka = createKafkaSink(config.kafka, log.child({ link: 'kafka' }));
  const timedSink: MessageSink = {
    start: () => kafka.start(),
    stop: () => kafka.stop(),
    status: () => kafka.status(),
    send: async (topic, messages) => {
      await kafka.send(topic, messages);
      const ackMs = now();
      for (const message of messages) {
        const event = JSON.parse(message.value) as { type: string; ts: string };
        if (event.type === 'CONSUMO') acks.push({ sampleMs: Date.parse(event.ts), ackMs });
      }
    },
  };
  let agent: Agent | undefined;
  const pipeline = createTelemetryPipeline({ config, log, kafkaSink: timedSink, onCommand: (line) => agent?.handleLine(line, 'mqtt') });
  agent = new Agent({ config, log, pipeline, env: {} });
  try {
    await agent.start();
    for (const line of [`AUTORIZAR_SUMINISTRO#${DRIVER_ID}`, 'SIM#PLUG']) {
      const reply = agent.handleLine(line, 'bench');
      if (!reply.startsWith('ACK')) throw new Error(`bench: ${line} refused: ${reply}`);
    }
    const startedMs = Date.now();
    await sleep(seconds * 1000);
    const latencies = acks.filter((a) => a.sampleMs >= startedMs + WARMUP_MS).map((a) => a.ackMs - a.sampleMs);
    const part: AckPart = { seconds, state: agent.snapshot().state, sampleToAckMs: summarize(latencies, 2), outboxDepthAtEnd: agent.snapshot().telemetry.outbox.depth };
    writePart('telemetry-ack', part);
  } finally {
    await agent.stop('bench_done');
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
