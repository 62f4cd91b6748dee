/**
 * The real brokers that broker and hardware-in-the-loop tests run against.
 *
 * `npm test` (scripts/test.sh) runs `scripts/test-services.sh start` first and exports what it
 * prints: KAFKA_BROKERS, MQTT_URL and TEST_SERVICES_DIR. To run one test file by hand:
 *
 *   eval "$(bash scripts/test-services.sh start)"
 *   KAFKA_BROKERS=$KAFKA_BROKERS MQTT_URL=$MQTT_URL TEST_SERVICES_DIR=$TEST_SERVICES_DIR \
 *     node --import tsx --test test/some.test.ts
 *   bash scripts/test-services.sh stop
 *
 * A test that needs brokers and finds none fails: it never passes by skipping.
 *
 * The shared brokers serve every test file, and `npm test` runs files concurrently: a test that
 * stops a broker to simulate an outage should do so on its own instance from
 * `startPrivateServices()`, not on the shared one through `stopKafka()`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Brokers {
  /** host:port of each Kafka bootstrap broker, for kafkajs `brokers`. */
  kafkaBrokers: string[];
  /** mqtt://host:port of the Mosquitto broker, for mqtt.js `connect`. */
  mqttUrl: string;
}

/** A set of brokers with its own run dir, that a test may stop, restart and must stop at the end. */
export interface PrivateServices extends Brokers {
  dir: string;
  stopKafka(): Promise<void>;
  startKafka(): Promise<void>;
  stopMqtt(): Promise<void>;
  startMqtt(): Promise<void>;
  stop(): Promise<void>;
}

const SCRIPT_PATH = fileURLToPath(new URL('../../scripts/test-services.sh', import.meta.url));
const SCRIPT_TIMEOUT_MS = 300_000;

/** The shared brokers from the environment; throws when `npm test` did not provide them. */
export function requireBrokers(env: NodeJS.ProcessEnv = process.env): Brokers {
  const kafkaBrokers = (env.KAFKA_BROKERS ?? '').split(',').map((broker) => broker.trim()).filter(Boolean);
  const mqttUrl = (env.MQTT_URL ?? '').trim();
  if (kafkaBrokers.length === 0 || mqttUrl === '') {
    const where = env.CI === 'true'
      ? 'CI=true: scripts/test.sh should have started them; check its "test services" step'
      : 'run `npm test`, or eval "$(bash scripts/test-services.sh start)" before running a test file';
    throw new Error(`TEST_BROKERS_MISSING: KAFKA_BROKERS and MQTT_URL must be set (${where})`);
  }
  return { kafkaBrokers, mqttUrl };
}

/** Stops the shared Kafka broker; it keeps its port and data for `startKafka()`. */
export async function stopKafka(): Promise<void> {
  await runScript('stop-kafka');
}

/** Restarts the shared Kafka broker; resolves once it serves metadata again. */
export async function startKafka(): Promise<void> {
  await runScript('start-kafka');
}

/** Stops the shared Mosquitto broker; it keeps its port for `startMqtt()`. */
export async function stopMqtt(): Promise<void> {
  await runScript('stop-mqtt');
}

/** Restarts the shared Mosquitto broker; resolves once it accepts connections again. */
export async function startMqtt(): Promise<void> {
  await runScript('start-mqtt');
}

/**
 * Starts a Kafka and a Mosquitto of the test's own, in a fresh run dir. One retry: concurrent
 * `test-services.sh start`s can pick the same free loopback port (a broker then exits at start-up);
 * the retry is reported through `report` (e.g. t.diagnostic), never silent.
 */
export async function startPrivateServices(report: (message: string) => void = (message) => process.stderr.write(message + '\n')): Promise<PrivateServices> {
  try {
    return await startPrivateServicesOnce();
  } catch (error) {
    report(`private test services failed to start once, retrying: ${(error as Error).message.split('\n')[0]}`);
    return startPrivateServicesOnce();
  }
}

async function startPrivateServicesOnce(): Promise<PrivateServices> {
  const dir = await mkdtemp(join(tmpdir(), 'charger-agent-test-services-'));
  const env = { ...process.env, TEST_SERVICES_DIR: dir };
  const printed = await runScript('start', env);
  const brokers = requireBrokers({ ...parseEnvLines(printed), CI: process.env.CI });
  return {
    ...brokers,
    dir,
    stopKafka: async () => { await runScript('stop-kafka', env); },
    startKafka: async () => { await runScript('start-kafka', env); },
    stopMqtt: async () => { await runScript('stop-mqtt', env); },
    startMqtt: async () => { await runScript('start-mqtt', env); },
    stop: async () => { await runScript('stop', env); },
  };
}

/** `NAME=value` lines as printed by the script (values are shell-quoted only when they need it). */
function parseEnvLines(text: string): Record<string, string> {
  const entries = text.split('\n')
    .map((line) => /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => [match[1] ?? '', match[2] ?? ''] as const);
  return Object.fromEntries(entries);
}

function runScript(command: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT_PATH, command], { env, timeout: SCRIPT_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`TEST_SERVICES_FAILED: scripts/test-services.sh ${command} failed (${error.message.split('\n')[0]})\n${stderr}`));
        return;
      }
      resolve(stdout);
    });
  });
}
