// The one source of the configuration: its TypeScript type, its defaults and its validation.
// Unknown keys are errors (a typo must never be silently ignored); defaults run on a fresh machine.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const positiveMs = z.number().int().positive();
const filePath = z.string().min(1);

/** Default state directory: systemd's StateDirectory when run by the unit, else the user's state dir. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(':')[0]!;
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'charger-agent');
}

/** A comma list from a flag or env ("a:9092,b:9092"), or a YAML list; "" means none. */
const commaList = z.preprocess(
  (value) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
  z.array(z.string().min(1)),
);

/** A GPIO line: by chip label + line offset (pinctrl-rp1 17) or by raw sysfs number. */
export const pinSchema = z
  .object({
    chip: z.string().min(1).optional().describe('gpiochip label, e.g. pinctrl-rp1 (Pi 5) or pinctrl-bcm2711 (Pi 4)'),
    line: z.number().int().min(0).optional().describe('line offset on that chip (the BCM number on a Pi)'),
    sysfs: z.number().int().min(0).optional().describe('raw sysfs GPIO number, instead of chip + line'),
    activeLow: z.boolean().default(false),
  })
  .strict()
  .refine((pin) => pin.sysfs !== undefined || (pin.chip !== undefined && pin.line !== undefined), {
    message: 'a pin needs either chip and line, or sysfs',
  });

const health = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(5001),
    allowedPeers: z.array(z.string().min(1)).default(['127.0.0.0/8', '::1']).describe('addresses/CIDRs allowed to send state-changing commands'),
    maxConnections: z.number().int().min(1).max(10_000).default(64),
    idleTimeoutMs: positiveMs.default(30_000),
  })
  .strict();

const http = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(5002).describe('0 turns HTTP /health and /metrics off'),
  })
  .strict();

const charging = z
  .object({
    authorizationTimeoutS: z.number().positive().default(60),
    consumoIntervalMs: positiveMs.default(1000),
    meterStaleMs: positiveMs.default(10_000).describe('no good meter reading for this long during a charge is a fault'),
    feedbackTimeoutMs: positiveMs.default(500).describe('the feedback contact must follow a relay command within this time'),
  })
  .strict();

const sim = z
  .object({
    powerW: z.number().min(0).default(7400),
    initialImportKwh: z.number().min(0).default(1234.5),
    voltageV: z.number().positive().default(230),
    phases: z.union([z.literal(1), z.literal(3)]).default(3),
    relayFollowMs: z.number().int().min(0).default(20).describe('how long the simulated feedback contact takes to follow'),
  })
  .strict();

const meter = z
  .object({
    driver: z.enum(['sim', 'modbus']).default('sim'),
    path: filePath.default('/dev/ttyUSB0'),
    model: z.enum(['sdm630', 'sdm72', 'sdm72v2', 'sdm120']).default('sdm630').describe('sdm72 = SDM72D-M (totals only), sdm72v2 = SDM72D-M-2'),
    baud: z.number().int().positive().default(9600),
    unit: z.number().int().min(1).max(247).default(1),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    timeoutMs: positiveMs.default(500),
    retries: z.number().int().min(0).max(10).default(2),
    pollIntervalMs: positiveMs.default(1000),
    backoffInitialMs: positiveMs.default(1000),
    backoffMaxMs: positiveMs.default(60_000),
    breakerMaxReopensPerHour: z.number().int().min(1).default(10),
    breakerPauseMs: positiveMs.default(300_000),
    staleIdleMs: positiveMs.default(600_000).describe('no good reading for this long while idle reopens the port'),
    maxConsecutiveErrors: z.number().int().min(1).default(15),
    reopenAfterMs: positiveMs.default(1_800_000).describe('preventive reopen of the port after this age'),
    qosWindowMs: positiveMs.default(60_000).describe('the meter success rate (QoS) is over the requests of this last stretch of time'),
  })
  .strict();

const gpio = z
  .object({
    sysfsRoot: filePath.default('/sys/class/gpio'),
    relay: pinSchema.optional(),
    relayFeedback: pinSchema.optional(),
    plugPresent: pinSchema.optional(),
    emergencyStop: pinSchema.optional(),
    externalFault: pinSchema.optional().describe('auxiliary contact of the RCD / protection device: active = tripped'),
    heartbeat: pinSchema.optional().describe('dead-man output: a square wave while the relay is meant to be closed'),
    heartbeatHz: z.number().int().min(1).max(500).default(50).describe('frequency of the dead-man square wave (two edges per period)'),
    debounceMs: z.number().int().min(0).default(20),
  })
  .strict();

const tls = z
  .object({
    enabled: z.boolean().default(false),
    caFile: filePath.optional(),
    certFile: filePath.optional(),
    keyFile: filePath.optional(),
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict();

const sasl = z
  .object({
    mechanism: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none'),
    username: z.string().optional(),
    passwordFile: filePath.optional().describe('read at start; e.g. a systemd credential'),
  })
  .strict();

const kafka = z
  .object({
    brokers: commaList.default([]).describe('empty = Kafka off'),
    topic: z.string().min(1).default('cp_telemetry'),
    monitorTopic: z.string().min(1).default('monitor-events'),
    clientId: z.string().min(1).default('charger-agent'),
    sendTimeoutMs: positiveMs.default(5000),
    tls: tls.prefault({}),
    sasl: sasl.prefault({}),
  })
  .strict();

const mqtt = z
  .object({
    url: z.string().default('').describe('empty = MQTT off, e.g. mqtt://127.0.0.1:1883'),
    prefix: z.string().min(1).default('charger'),
    username: z.string().optional(),
    passwordFile: filePath.optional(),
    meterIntervalMs: positiveMs.default(5000),
    commands: z.boolean().default(false).describe('accept authorize/stop/resume on command topics'),
    offlineQueueMax: z.number().int().min(1).default(1000),
  })
  .strict();

const store = z
  .object({
    maxBytes: z.number().int().positive().default(64 * 1024 * 1024),
    consumoFlushMs: positiveMs.default(30_000).describe('how long unacknowledged CONSUMO samples may wait in memory'),
    ledgerCheckpointMs: positiveMs.default(60_000).describe('how often an open session\'s last meter reading is saved in the ledger'),
  })
  .strict();

const webhook = z
  .object({
    url: z
      .string()
      .refine((url) => url === '' || /^https?:\/\/[^\s/]+/i.test(url), 'an http:// or https:// URL, or empty')
      .default('')
      .describe('empty = no alerts; JSON POST on engine failure and recovery'),
    timeoutMs: positiveMs.default(5000),
    retries: z.number().int().min(0).max(20).default(3).describe('attempts after the first, with exponential backoff'),
    backoffInitialMs: positiveMs.default(1000),
    backoffMaxMs: positiveMs.default(30_000),
    minIntervalMs: z.number().int().min(0).default(60_000).describe('no failure alert sooner than this after the previous one'),
  })
  .strict();

const monitor = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(5001),
    monitorId: z.string().min(1).default('monitor-1'),
    intervalMs: positiveMs.default(1000),
    connectTimeoutMs: positiveMs.default(1000),
    readTimeoutMs: positiveMs.default(1000),
    failureThreshold: z.number().int().min(1).default(3),
    summaryEveryMs: z.number().int().min(0).default(0).describe('0 = no periodic health_check summary'),
    queueMax: z.number().int().min(1).default(1000).describe('messages kept per broker while it is unreachable'),
    webhook: webhook.prefault({}),
  })
  .strict();

const demo = z
  .object({
    chargeSeconds: z.number().positive().default(20),
    pauseSeconds: z.number().min(0).default(3),
    drivers: z.array(z.string().min(1)).default(['DRIVER-42', 'DRIVER-7']),
  })
  .strict();

const ocpp = z
  .object({
    url: z
      .string()
      .refine((url) => url === '' || /^wss?:\/\/[^\s/]+/i.test(url), 'a ws:// or wss:// URL, or empty')
      .default('')
      .describe('empty = OCPP off; the CSMS endpoint, the charge point id is appended as the last path segment'),
    chargePointId: z.string().regex(/^[A-Za-z0-9._:-]{1,48}$/, 'letters, digits, . _ : - (1 to 48)').optional().describe('default: cpId'),
    securityProfile: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(0).describe('0 none, 1 basic auth, 2 basic auth over TLS'),
    passwordFile: filePath.optional().describe('profile 1 and 2: the basic-auth password, read at start'),
    caFile: filePath.optional().describe('profile 2: CA certificate(s) of the CSMS (PEM); default the system store'),
    vendor: z.string().min(1).max(20).default('charger-agent'),
    model: z.string().min(1).max(20).default('charger-agent'),
    heartbeatIntervalS: z.number().int().positive().default(300).describe('until BootNotification gives one'),
    meterValueSampleIntervalS: z.number().int().min(0).default(60).describe('MeterValues during a transaction, 0 = none'),
    clockAlignedDataIntervalS: z.number().int().min(0).default(900).describe('MeterValues at clock-aligned instants, 0 = none'),
    callTimeoutS: z.number().int().positive().default(30),
    reconnectMaxS: z.number().int().positive().default(60).describe('longest wait between reconnect attempts (jittered backoff)'),
    authorizeRemoteTxRequests: z.boolean().default(false),
    localAuthList: z.array(z.string().min(1).max(20)).default([]).describe('idTags accepted locally, without an Authorize to the CSMS'),
  })
  .strict()
  .refine((o) => o.securityProfile === 0 || o.passwordFile !== undefined, { message: 'security profile 1 and 2 need passwordFile', path: ['passwordFile'] })
  .refine((o) => o.securityProfile !== 2 || o.url === '' || o.url.startsWith('wss://'), { message: 'security profile 2 needs a wss:// url', path: ['url'] });

export const configSchema = z
  .object({
    cpId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1 to 64)').default('CP-001'),
    hardware: z.enum(['auto', 'sim', 'pi']).default('auto').describe('auto = pi when GPIO pins are configured and sysfs GPIO exists, else sim'),
    pricePerKwh: z.number().min(0).default(0.2),
    stateDir: filePath.default(() => defaultStateDir()),
    health: health.prefault({}),
    http: http.prefault({}),
    charging: charging.prefault({}),
    sim: sim.prefault({}),
    meter: meter.prefault({}),
    gpio: gpio.prefault({}),
    kafka: kafka.prefault({}),
    mqtt: mqtt.prefault({}),
    store: store.prefault({}),
    monitor: monitor.prefault({}),
    demo: demo.prefault({}),
    ocpp: ocpp.prefault({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type PinConfig = z.output<typeof pinSchema>;
