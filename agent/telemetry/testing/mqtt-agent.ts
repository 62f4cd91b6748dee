// Test support: a process holding an MQTT sink connected to a broker, so a test can SIGKILL it and
// watch the last will. Publishes a status once; runs until killed.
// Usage: node --import tsx mqtt-agent.ts <mqttUrl> <prefix> <cpId>
import { configSchema } from '../../config/schema.js';
import { createLogger } from '../../logging/logger.js';
import { createMqttSink } from '../mqtt-sink.js';

const [url, prefix, cpId] = process.argv.slice(2);
if (!url || !prefix || !cpId) {
  process.stderr.write('usage: mqtt-agent.ts <mqttUrl> <prefix> <cpId>\n');
  process.exit(64);
}
const { mqtt } = configSchema.parse({ cpId, stateDir: '/nonexistent', mqtt: { url, prefix } });
const sink = createMqttSink(mqtt, cpId, createLogger({ write: (line) => process.stderr.write(line + '\n'), pretty: false }));
await sink.start();
sink.publish('status', JSON.stringify({ cp_id: cpId, state: 'Available' }));
setInterval(() => {}, 60_000); // stay alive until the test kills us
