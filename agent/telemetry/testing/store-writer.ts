// Test support: a process that owns a telemetry store and obeys the JSON lines it reads on stdin, so a
// test can kill it with SIGKILL at a known point. A line is a TelemetryEvent (appended; answered
// `appended <seq> <type> <durable>` once its `durable` promise settled, CONSUMO once numbered), or
// {"op":"deliver"} (Kafka acknowledges everything sendable: `delivered <n>`), or
// {"op":"clock","ms":N} then {"op":"maintain"} (`maintained`, once the store settled).
// Usage: node --import tsx store-writer.ts <stateDir> <cpId> [ledgerCheckpointMs]
import { createInterface } from 'node:readline';
import type { TelemetryEvent } from '../../charging/types.js';
import { createLogger } from '../../logging/logger.js';
import { openTelemetryStore } from '../store.js';

const [stateDir, cpId, checkpointMs] = process.argv.slice(2);
if (!stateDir || !cpId) {
  process.stderr.write('usage: store-writer.ts <stateDir> <cpId> [ledgerCheckpointMs]\n');
  process.exit(64);
}
let nowMs = Date.now();
const store = openTelemetryStore({
  stateDir,
  cpId,
  maxBytes: 64 * 1024 * 1024,
  consumoFlushMs: 30_000,
  ledgerCheckpointMs: Number(checkpointMs ?? 60_000),
  outbox: true,
  log: createLogger({ write: (line) => process.stderr.write(line + '\n'), pretty: false }),
  now: () => nowMs,
});
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const message = JSON.parse(line) as TelemetryEvent | { op: 'deliver' } | { op: 'clock'; ms: number } | { op: 'maintain' };
  if ('op' in message) {
    if (message.op === 'clock') nowMs = message.ms;
    else if (message.op === 'maintain') {
      store.maintain();
      await store.settled();
      process.stdout.write('maintained\n');
    } else {
      const batch = await store.nextBatch(1000);
      store.acknowledge(batch);
      await store.settled();
      process.stdout.write(`delivered ${batch.length}\n`);
    }
    continue;
  }
  const appended = store.append(message);
  const delivered = await appended.numbered;
  const durable = message.type === 'CONSUMO' ? 'memory' : String(await appended.durable);
  process.stdout.write(`appended ${delivered?.seq} ${delivered?.type} ${durable}\n`);
}
await store.close();
