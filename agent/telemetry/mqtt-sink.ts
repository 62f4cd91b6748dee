// The MQTT link (mqtt.js 5): `<prefix>/<cp_id>/status` (retained JSON state), `/meter`, `/session`,
// `/online` (retained `true`; last will `false`, retained), and, when mqtt.commands is on,
// `/cmd/authorize|stop|resume` mapped to protocol lines with the answer on `/cmd/reply`.
// Everything is QoS 1. While connected, messages go straight to mqtt.js, which keeps unacknowledged
// ones across a reconnect; while disconnected they wait in our own queue, bounded by
// mqtt.offlineQueueMax (the oldest meter samples go first, session events stay), because mqtt.js's own
// offline store has no bound. The retained status and `/online true` are published again on every
// connect: a broker restarted without persistence has forgotten them.
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Config } from '../config/schema.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import { OutageLog } from '../logging/outage-log.js';
import { reconnectPeriodMs } from './mqtt-reconnect.js';
import type { CommandHandler, LinkStatus, MqttMessageKind, MqttSink } from './types.js';

type MqttSettings = Config['mqtt'];

export interface MqttSinkOptions {
  onCommand?: CommandHandler;
  now?: () => number;
  /** Overrides the MQTT client id (default `charger-agent-<cp_id>`). */
  clientId?: string;
  /** Numbers in [0, 1) for the reconnect period (Math.random by default). */
  random?: () => number;
}

const DRIVER_ID = /^[A-Za-z0-9._:@-]{1,64}$/;
const STOP_WAIT_MS = 1_000;

/** Command topic → protocol line; the driver id is checked so a payload can never inject a second line. */
const COMMANDS: Record<string, { wire: string; toLine: (payload: string) => string | undefined }> = {
  authorize: { wire: 'AUTORIZAR_SUMINISTRO', toLine: (payload) => (DRIVER_ID.test(payload) ? `AUTORIZAR_SUMINISTRO#${payload}` : undefined) },
  stop: { wire: 'PARAR', toLine: () => 'PARAR' },
  resume: { wire: 'REANUDAR', toLine: () => 'REANUDAR' },
};

export function mqttTopics(settings: Pick<MqttSettings, 'prefix'>, cpId: string) {
  const base = `${settings.prefix}/${cpId}`;
  return {
    base,
    status: `${base}/status`,
    meter: `${base}/meter`,
    session: `${base}/session`,
    online: `${base}/online`,
    commands: `${base}/cmd/+`,
    reply: `${base}/cmd/reply`,
  };
}

export function createMqttSink(settings: MqttSettings, cpId: string, log: Logger, options: MqttSinkOptions = {}): MqttSink {
  return new MqttLink(settings, cpId, log, options);
}

interface Queued {
  kind: Exclude<MqttMessageKind, 'status'>;
  payload: string;
}

class MqttLink implements MqttSink {
  private readonly topics;
  private readonly now: () => number;
  private readonly outage: OutageLog;
  private client: MqttClient | undefined;
  private queue: Queued[] = [];
  private lastStatus: string | undefined;
  private droppedMeter = 0;
  private lastError: string | undefined;

  constructor(
    private readonly settings: MqttSettings,
    private readonly cpId: string,
    private readonly log: Logger,
    private readonly options: MqttSinkOptions,
  ) {
    this.topics = mqttTopics(settings, cpId);
    this.now = options.now ?? Date.now;
    this.outage = new OutageLog(log, { events: { down: LOG_EVENTS.mqttDown, still: LOG_EVENTS.mqttStillDown, up: LOG_EVENTS.mqttUp } });
  }

  /** Starts connecting (and keeps retrying) without waiting for the broker. */
  async start(): Promise<void> {
    const client = connect(this.settings.url, this.clientOptions());
    this.client = client;
    client.on('connect', () => this.onConnect(client));
    client.on('close', () => this.onDown('connection closed'));
    client.on('offline', () => this.onDown('offline'));
    client.on('error', (error) => {
      this.lastError = error.message;
      this.onDown(error.message);
    });
    client.on('message', (topic, payload, packet) => void this.onMessage(topic, payload, packet));
  }

  publish(kind: MqttMessageKind, payload: string): void {
    if (kind === 'status') {
      this.lastStatus = payload; // the latest state is all that matters: sent now or at the next connect
      if (this.client?.connected) this.sendStatus(this.client);
      return;
    }
    if (this.client?.connected && this.queue.length === 0) this.send(this.client, kind, payload);
    else this.enqueue({ kind, payload });
  }

  async stop(deadlineMs = STOP_WAIT_MS): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    const ended = new Promise<void>((resolve) => {
      const finish = () => client.end(true, {}, () => resolve());
      if (!client.connected) return finish();
      // A clean stop says so itself; the will is only for when we die.
      client.publish(this.topics.online, 'false', { qos: 1, retain: true }, () => client.end(false, {}, () => resolve()));
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(timer);
    client.end(true);
  }

  status(): LinkStatus & { queued: number; droppedMeter: number } {
    return {
      enabled: this.settings.url !== '',
      connected: this.client?.connected ?? false,
      lastError: this.lastError,
      queued: this.queue.length,
      droppedMeter: this.droppedMeter,
    };
  }

  private clientOptions(): IClientOptions {
    return {
      clientId: this.options.clientId ?? `charger-agent-${this.cpId}`,
      clean: true,
      keepalive: 30,
      reconnectPeriod: reconnectPeriodMs(this.options.random),
      connectTimeout: 10_000,
      queueQoSZero: false,
      username: this.settings.username,
      password: this.settings.passwordFile ? readPassword(this.settings.passwordFile) : undefined,
      will: { topic: this.topics.online, payload: Buffer.from('false'), qos: 1, retain: true },
    };
  }

  private onConnect(client: MqttClient): void {
    if (client !== this.client) return;
    this.lastError = undefined;
    client.options.reconnectPeriod = reconnectPeriodMs(this.options.random); // for the next outage (mqtt-reconnect.ts)
    this.outage.success(this.now(), { url: this.settings.url });
    client.publish(this.topics.online, 'true', { qos: 1, retain: true });
    this.sendStatus(client);
    if (this.settings.commands) client.subscribe(this.topics.commands, { qos: 1 });
    const waiting = this.queue;
    this.queue = [];
    for (const message of waiting) this.send(client, message.kind, message.payload);
  }

  private onDown(reason: string): void {
    if (this.client === undefined) return;
    this.outage.failure(this.now(), { url: this.settings.url, error: reason, retry_every_ms: this.client.options.reconnectPeriod });
  }

  private send(client: MqttClient, kind: Queued['kind'], payload: string): void {
    client.publish(this.topics[kind], payload, { qos: 1 }, (error) => {
      // mqtt.js keeps an unacknowledged QoS 1 message across reconnects; an error here means it gave
      // up on it (the client is ending), so it goes back to our queue.
      if (error && this.client === client) this.enqueue({ kind, payload });
    });
  }

  private sendStatus(client: MqttClient): void {
    if (this.lastStatus !== undefined) client.publish(this.topics.status, this.lastStatus, { qos: 1, retain: true });
  }

  private enqueue(message: Queued): void {
    this.queue.push(message);
    if (this.queue.length <= this.settings.offlineQueueMax) return;
    const meter = this.queue.findIndex((queued) => queued.kind === 'meter');
    const victim = meter >= 0 ? meter : 0;
    const [dropped] = this.queue.splice(victim, 1);
    if (dropped?.kind === 'meter') this.droppedMeter += 1;
    else this.log.warning(LOG_EVENTS.outboxDropped, { link: 'mqtt', type: 'session', reason: 'offline_queue_full', max: this.settings.offlineQueueMax });
  }

  private async onMessage(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const client = this.client;
    const name = topic.slice(this.topics.base.length + '/cmd/'.length);
    const command = COMMANDS[name];
    if (!client || !this.settings.commands || !command || !this.options.onCommand) return;
    // A retained command would run again at every reconnect: commands are events, never state.
    // (A broker clears the flag on live delivery; it is set when a stored message is replayed.)
    if (packet.retain) {
      this.log.warning(LOG_EVENTS.commandRejected, { via: 'mqtt', topic, reason: 'retained' });
      client.publish(this.topics.reply, `NACK#${command.wire}#RETAINED`, { qos: 1 });
      return;
    }
    const line = command.toLine(payload.toString('utf8').trim());
    if (line === undefined) {
      this.log.warning(LOG_EVENTS.commandRejected, { via: 'mqtt', topic, reason: 'BAD_ID' });
      client.publish(this.topics.reply, `NACK#${command.wire}#BAD_ID`, { qos: 1 });
      return;
    }
    try {
      const reply = await this.options.onCommand(line);
      if (typeof reply === 'string') client.publish(this.topics.reply, reply, { qos: 1 });
    } catch (error) {
      this.log.err(LOG_EVENTS.commandRejected, { via: 'mqtt', topic, error: (error as Error).message });
    }
  }
}

function readPassword(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new Error(`MQTT_CONFIG_INVALID: cannot read mqtt.passwordFile ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
