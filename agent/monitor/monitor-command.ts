// `charger-agent monitor`: the watchdog process of the original design. It polls the agent's TCP
// port and tells the central system (Kafka monitor-events, MQTT, a webhook) when the engine stops
// answering — which the agent cannot report about itself. `--test` only checks the connections.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { envName, type FlagSpec } from '../config/flags.js';
import type { Config } from '../config/schema.js';
import { LOG_EVENTS } from '../logging/events.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { createKafkaSink } from '../telemetry/kafka-sink.js';
import { Monitor } from './monitor.js';
import { createMonitorMqttSink } from './mqtt-monitor-sink.js';
import { createHeartbeats } from '../systemd/liveness.js';
import { createNotifier } from '../systemd/notify.js';
import { formatTable, runSelfTest } from './self-test.js';

import { EXIT } from '../cli/exit-codes.js';

/** Shutdown must finish before systemd's stop timeout. */
const FORCED_EXIT_MS = 4500;

interface MonitorFlag {
  /** The command-line flag, without --. */
  cli: string;
  spec: FlagSpec;
}

const flag = (cli: string, name: string, path: string, kind: FlagSpec['kind'], help: string): MonitorFlag => ({
  cli,
  spec: { flag: name, path: path.split('.'), kind, help },
});

/**
 * Monitor settings have env names of their own (CHARGER_MONITOR_HOST …) so that one environment
 * file can serve the agent and the monitor; the charge point id and the brokers are shared.
 */
export const MONITOR_FLAGS: MonitorFlag[] = [
  flag('host', 'monitor-host', 'monitor.host', 'string', "the agent's TCP health port address (default 127.0.0.1)"),
  flag('port', 'monitor-port', 'monitor.port', 'number', "the agent's TCP health port (default 5001)"),
  flag('cp-id', 'cp-id', 'cpId', 'string', 'charge point id reported to the central system (default CP-001)'),
  flag('monitor-id', 'monitor-id', 'monitor.monitorId', 'string', 'this monitor in its messages (default monitor-1)'),
  flag('interval-ms', 'monitor-interval-ms', 'monitor.intervalMs', 'number', 'time between probes (default 1000)'),
  flag('connect-timeout-ms', 'monitor-connect-timeout-ms', 'monitor.connectTimeoutMs', 'number', 'TCP connect timeout (default 1000)'),
  flag('read-timeout-ms', 'monitor-read-timeout-ms', 'monitor.readTimeoutMs', 'number', 'answer timeout (default 1000)'),
  flag('failure-threshold', 'monitor-failure-threshold', 'monitor.failureThreshold', 'number', 'failed probes in a row that make an outage (default 3)'),
  flag('summary-every-ms', 'monitor-summary-every-ms', 'monitor.summaryEveryMs', 'number', 'periodic health_check summary, 0 = off (default 0)'),
  flag('kafka-brokers', 'kafka-brokers', 'kafka.brokers', 'string', 'comma list host:port; empty = Kafka off (default off)'),
  flag('monitor-topic', 'monitor-topic', 'kafka.monitorTopic', 'string', 'Kafka topic for monitor events (default monitor-events)'),
  flag('mqtt-url', 'mqtt-url', 'mqtt.url', 'string', 'e.g. mqtt://127.0.0.1:1883; empty = MQTT off (default off)'),
  flag('mqtt-prefix', 'mqtt-prefix', 'mqtt.prefix', 'string', 'MQTT topic prefix: <prefix>/<cp_id>/monitor (default charger)'),
  flag('webhook-url', 'monitor-webhook-url', 'monitor.webhook.url', 'string', 'JSON POST alerts on failure and recovery; empty = off'),
];

export const MONITOR_HELP = `Usage: charger-agent monitor [--config FILE] [--test] [options]

Polls the charge point's agent with STATUS? over TCP and reports to the central system:
register_to_central at start, authenticated_with_central once Kafka stored that registration
(acks=all), health_check on every change, report_engine_failure once per outage
(after --failure-threshold failed probes in a row: KO, TIMEOUT or CONNECTION_ERROR) and
engine_recovered, on Kafka (--monitor-topic, key cp_id) and MQTT (<prefix>/<cp_id>/monitor).
Messages a broker could not take are kept (bounded) and sent later, in order.
With --webhook-url, a JSON POST alert on failure and on recovery (rate-limited, retried).

  --config FILE                  YAML (or JSON) config file: the monitor: section and the brokers
  --test                         check the engine and each configured broker once, print a table,
                                 exit 0 when all answer, 1 otherwise
${MONITOR_FLAGS.map((f) => `  --${f.cli.padEnd(29)}${f.spec.help}\n${' '.repeat(33)}env ${envName(f.spec.flag)}`).join('\n')}

Exit codes: 0 stopped cleanly (or --test: all answered), 1 runtime failure (or --test: something did
not answer), 2 usage error, 78 bad configuration.`;

export async function runMonitorCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(MONITOR_FLAGS.map((f) => [f.cli, { type: 'string' as const }]));
    ({ values } = parseArgs({
      args: argv,
      options: { ...options, config: { type: 'string' }, test: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`charger-agent monitor: ${(error as Error).message}\n\n${MONITOR_HELP}\n`);
    return EXIT.usage;
  }
  if (values.help) {
    process.stdout.write(MONITOR_HELP + '\n');
    return EXIT.ok;
  }

  const log = createLogger().child({ component: 'monitor' });
  const config = loadMonitorConfig(values, log);
  if (!config) return EXIT.config;
  if (values.test) return selfTest(config, log);
  return runMonitor(config, log);
}

function loadMonitorConfig(values: Record<string, string | boolean | undefined>, log: Logger): Config | undefined {
  const flags = Object.fromEntries(MONITOR_FLAGS.filter((f) => values[f.cli] !== undefined).map((f) => [f.spec.flag, values[f.cli]]));
  try {
    return loadConfig({ flags, env: process.env, file: values.config as string | undefined, flagSpecs: MONITOR_FLAGS.map((f) => f.spec) });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) log.err(LOG_EVENTS.configInvalid, { problem: withCliFlagNames(problem) });
    log.err(LOG_EVENTS.configInvalid, { problems: error.problems.length, exit: EXIT.config });
    return undefined;
  }
}

/** Problems name a flag by its spec name (--monitor-port); say it as the user typed it (--port). */
function withCliFlagNames(problem: string): string {
  return MONITOR_FLAGS.reduce((text, f) => text.replaceAll(`--${f.spec.flag}:`, `--${f.cli}:`).replaceAll(`from --${f.spec.flag})`, `from --${f.cli})`), problem);
}

async function selfTest(config: Config, log: Logger): Promise<number> {
  const results = await runSelfTest(config, { log });
  process.stdout.write(formatTable(results) + '\n');
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
}

async function runMonitor(config: Config, log: Logger): Promise<number> {
  const kafka = config.kafka.brokers.length > 0 ? createKafkaSink({ ...config.kafka, clientId: `${config.kafka.clientId}-monitor` }, log) : undefined;
  const mqtt = config.mqtt.url
    ? createMonitorMqttSink(config.mqtt, log, { clientId: `charger-monitor-${config.cpId}-${config.monitor.monitorId}` })
    : undefined;
  const monitor = new Monitor({ cpId: config.cpId, monitor: config.monitor, kafkaTopic: config.kafka.monitorTopic, mqttPrefix: config.mqtt.prefix, log, kafka, mqtt });

  const crash = (error: unknown) => {
    log.crit(LOG_EVENTS.unhandledError, { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(EXIT.failure);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  // Type=notify unit: READY once probing runs; the watchdog is fed only while probes keep completing
  const { intervalMs, connectTimeoutMs, readTimeoutMs } = config.monitor;
  const heartbeats = createHeartbeats({ probe_loop: Math.max(5000, 3 * (intervalMs + connectTimeoutMs + readTimeoutMs)) });
  monitor.on('probe', () => heartbeats.beat('probe_loop'));
  const notifier = createNotifier({ log, liveness: () => heartbeats.check() });
  notifier.start();
  await monitor.start();
  await notifier.ready('monitoring');
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.notice('monitor_stopping', { signal });
      void notifier.stopping();
      setTimeout(() => {
        log.warning('shutdown_forced', { after_ms: FORCED_EXIT_MS });
        process.exit(EXIT.ok);
      }, FORCED_EXIT_MS).unref();
      monitor.stop().then(
        () => notifier.stop().then(() => resolve(EXIT.ok)),
        () => resolve(EXIT.failure),
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
