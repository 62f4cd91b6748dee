// Test support: a process that owns a telemetry store and appends the events it reads on stdin, one JSON
// per line, answering `appended <seq> <type>` once append() returned, so a test can kill it with
// SIGKILL at a known point. Usage: node --import tsx store-writer.ts <stateDir> <cpId>
import { createInterface } from 'node:readline';
import type { TelemetryEvent } from '../../charging/types.js';
import { createLogger } from '../../logging/logger.js';
import { openTelemetryStore } from '../store.js';

const [stateDir, cpId] = process.argv.slice(2);
if (!stateDir || !cpId) {
  process.stderr.write('usage: store-writer.ts <stateDir> <cpId>\n');
  process.exit(64);
}
const store = openTelemetryStore({
  stateDir,
  cpId,
  maxBytes: 64 * 1024 * 1024,
  consumoFlushMs: 30_000,
  ledgerCheckpointMs: 60_000,
  outbox: true,
  log: createLogger({ write: (line) => process.stderr.write(line + '\n'), pretty: false }),
});
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const delivered = store.append(JSON.parse(line) as TelemetryEvent);
  process.stdout.write(`appended ${delivered.seq} ${delivered.type}\n`);
}
store.close();
