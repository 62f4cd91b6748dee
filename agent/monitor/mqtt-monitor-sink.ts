// The monitor's own MQTT link, behind MessageSink: QoS 1 publishes that resolve on the broker's
// PUBACK, bounded in time, and refused at once while disconnected so the monitor's bounded queue
// keeps them (mqtt.js's own offline store has no bound). A client id of its own, and no last will:
// the agent's `/online` topic belongs to the agent, and must not flip when the monitor comes and goes.
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Config } from '../config/schema.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import { OutageLog } from '../logging/outage-log.js';
import { reconnectPeriodMs } from '../telemetry/mqtt-reconnect.js';
import type { LinkStatus, MessageSink } from '../telemetry/types.js';

export interface MonitorMqttSinkOptions {
  clientId: string;
  /** A publish not acknowledged by then fails (the message stays queued). */
  sendTimeoutMs?: number;
  now?: () => number;
  /** Numbers in [0, 1) for the reconnect period (Math.random by default). */
  random?: () => number;
}

export function createMonitorMqttSink(settings: Config['mqtt'], log: Logger, options: MonitorMqttSinkOptions): MessageSink {
  return new MonitorMqttSink(settings, log, options);
}

class MonitorMqttSink implements MessageSink {
  private client: MqttClient | undefined;
  private lastError: string | undefined;
  private readonly outage: OutageLog;
  private readonly now: () => number;

  constructor(
    private readonly settings: Config['mqtt'],
    private readonly log: Logger,
    private readonly options: MonitorMqttSinkOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.outage = new OutageLog(log, { events: { down: LOG_EVENTS.mqttDown, still: LOG_EVENTS.mqttStillDown, up: LOG_EVENTS.mqttUp } });
  }

  /** Starts connecting, and reconnecting for as long as it runs; does not wait for the broker. */
  async start(): Promise<void> {
    const client = connect(this.settings.url, this.clientOptions());
    this.client = client;
    client.on('connect', () => {
      client.options.reconnectPeriod = reconnectPeriodMs(this.options.random); // for the next outage
      this.lastError = undefined;
      this.outage.success(this.now(), { url: this.settings.url });
    });
    client.on('offline', () => this.outage.failure(this.now(), { url: this.settings.url, error: this.lastError ?? 'offline', retry_every_ms: client.options.reconnectPeriod }));
    client.on('error', (error) => {
      this.lastError = error.message;
    });
  }

  async send(topic: string, messages: Array<{ key: string; value: string }>): Promise<void> {
    const timeoutMs = this.options.sendTimeoutMs ?? 5000;
    const client = await this.connectedClient(timeoutMs);
    await new Promise<void>((resolve, reject) => {
      let pending = messages.length;
      let settled = false;
      const timer = setTimeout(() => settle(new Error(`MQTT_SEND_TIMEOUT: ${pending} of ${messages.length} message(s) not acknowledged within ${timeoutMs} ms`)), timeoutMs);
      function settle(error?: Error): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      }
      if (pending === 0) return settle();
      for (const message of messages) {
        client.publish(topic, message.value, { qos: 1 }, (error) => {
          if (error) return settle(error);
          pending -= 1;
          if (pending === 0) settle();
        });
      }
    });
  }

  /** The client once connected, waiting at most timeoutMs: nothing is handed to mqtt.js's unbounded offline store. */
  private async connectedClient(timeoutMs: number): Promise<MqttClient> {
    const client = this.client;
    if (!client) throw new Error('MQTT_NOT_STARTED: the monitor MQTT link is not running');
    if (client.connected) return client;
    const connected = await new Promise<boolean>((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        resolve(value);
      };
      const onConnect = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      client.once('connect', onConnect);
    });
    if (!connected || !client.connected || this.client !== client) {
      throw new Error(`MQTT_DISCONNECTED: not connected to ${this.settings.url}${this.lastError ? ` (${this.lastError})` : ''}`);
    }
    return client;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => resolve(), 1000);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    client.end(true);
  }

  status(): LinkStatus {
    return { enabled: this.settings.url !== '', connected: this.client?.connected ?? false, lastError: this.lastError };
  }

  private clientOptions(): IClientOptions {
    return {
      clientId: this.options.clientId,
      clean: true,
      keepalive: 30,
      reconnectPeriod: reconnectPeriodMs(this.options.random),
      connectTimeout: 5000,
      username: this.settings.username,
      password: this.settings.passwordFile ? readFileSync(this.settings.passwordFile, 'utf8').replace(/\r?\n$/, '') : undefined,
    };
  }
}
