// The command-line flags of `charger-agent run` (and friends) as data: each maps to a config path,
// and each is also settable as env CHARGER_<NAME> (--health-port → CHARGER_HEALTH_PORT).

export type FlagKind = 'string' | 'number' | 'boolean';

export interface FlagSpec {
  flag: string;
  path: string[];
  kind: FlagKind;
  help: string;
}

const f = (flag: string, path: string, kind: FlagKind, help: string): FlagSpec => ({ flag, path: path.split('.'), kind, help });

export const RUN_FLAGS: FlagSpec[] = [
  f('cp-id', 'cpId', 'string', 'charge point id reported to the central system (default CP-001)'),
  f('hardware', 'hardware', 'string', 'sim | pi | auto (default auto: pi when GPIO pins are configured and present)'),
  f('health-host', 'health.host', 'string', 'address of the TCP health/command port (default 127.0.0.1)'),
  f('health-port', 'health.port', 'number', 'TCP health/command port (default 5001)'),
  f('http-host', 'http.host', 'string', 'address of HTTP /health and /metrics (default 127.0.0.1)'),
  f('http-port', 'http.port', 'number', 'HTTP /health and /metrics port, 0 = off (default 5002)'),
  f('kafka-brokers', 'kafka.brokers', 'string', 'comma list host:port; empty = Kafka off (default off)'),
  f('kafka-topic', 'kafka.topic', 'string', 'telemetry topic (default cp_telemetry)'),
  f('mqtt-url', 'mqtt.url', 'string', 'e.g. mqtt://127.0.0.1:1883; empty = MQTT off (default off)'),
  f('mqtt-prefix', 'mqtt.prefix', 'string', 'topic prefix (default charger)'),
  f('ocpp-url', 'ocpp.url', 'string', 'OCPP 1.6J CSMS, e.g. ws://127.0.0.1:8180/ocpp; empty = OCPP off (default off)'),
  f('ocpp-id', 'ocpp.chargePointId', 'string', 'OCPP charge point identity (default: --cp-id)'),
  f('state-dir', 'stateDir', 'string', 'session ledger and telemetry outbox (default $STATE_DIRECTORY or ~/.local/state/charger-agent)'),
  f('price-per-kwh', 'pricePerKwh', 'number', 'price used for importe (default 0.20)'),
  f('authorization-timeout-s', 'charging.authorizationTimeoutS', 'number', 'an authorization without a vehicle expires (default 60)'),
  f('meter-stale-ms', 'charging.meterStaleMs', 'number', 'meter silence during a charge that is a fault (default 10000)'),
  f('feedback-timeout-ms', 'charging.feedbackTimeoutMs', 'number', 'relay feedback must follow within (default 500)'),
  f('meter-driver', 'meter.driver', 'string', 'sim | modbus (default sim)'),
  f('meter-path', 'meter.path', 'string', 'serial device of the RS-485 adapter (default /dev/ttyUSB0)'),
  f('meter-model', 'meter.model', 'string', 'sdm630 | sdm72 | sdm72v2 | sdm120 (default sdm630)'),
  f('meter-baud', 'meter.baud', 'number', 'baud rate (default 9600)'),
  f('meter-unit', 'meter.unit', 'number', 'Modbus unit id (default 1)'),
  f('meter-parity', 'meter.parity', 'string', 'none | even | odd (default none)'),
  f('meter-stop-bits', 'meter.stopBits', 'number', '1 | 2 (default 1)'),
  f('meter-timeout-ms', 'meter.timeoutMs', 'number', 'answer timeout per request (default 500)'),
  f('meter-retries', 'meter.retries', 'number', 'retries per request (default 2)'),
  f('meter-poll-ms', 'meter.pollIntervalMs', 'number', 'reading interval (default 1000)'),
  f('sim-power-w', 'sim.powerW', 'number', 'power drawn by the simulated vehicle (default 7400)'),
];

export function envName(flag: string): string {
  return 'CHARGER_' + flag.toUpperCase().replace(/-/g, '_');
}

export function flagHelp(specs: FlagSpec[]): string {
  const width = Math.max(...specs.map((s) => s.flag.length)) + 4;
  return specs.map((s) => `  --${s.flag.padEnd(width)}${s.help}`).join('\n');
}
