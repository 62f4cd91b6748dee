// A test double for a broker link (Kafka or MQTT): up or down on demand, recording what it took.
// Only tests import it; production code gets the real sinks from agent/telemetry/.
import { EventEmitter } from 'node:events';
import type { LinkStatus, MessageSink } from '../../telemetry/types.js';

export interface AcknowledgedMessage {
  topic: string;
  key: string;
  value: string;
}

/** Emits 'acknowledged' (AcknowledgedMessage[]) after every accepted send. */
export class FakeSink extends EventEmitter implements MessageSink {
  up = true;
  /** Rejects this many start() calls first. */
  startFailures = 0;
  /** send() never settles while set. */
  hang = false;
  starts = 0;
  stopped = false;
  readonly acknowledged: AcknowledgedMessage[] = [];

  async start(): Promise<void> {
    this.starts += 1;
    if (this.startFailures > 0) {
      this.startFailures -= 1;
      throw new Error('FAKE_CONNECT: broker unreachable');
    }
  }

  send(topic: string, messages: Array<{ key: string; value: string }>): Promise<void> {
    if (this.hang) return new Promise(() => {});
    if (!this.up) return Promise.reject(new Error('FAKE_SEND: broker down'));
    const taken = messages.map((m) => ({ topic, ...m }));
    this.acknowledged.push(...taken);
    this.emit('acknowledged', taken);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  status(): LinkStatus {
    return { enabled: true, connected: this.up };
  }

  /** The acknowledged messages parsed as JSON. */
  values<T = Record<string, unknown>>(): T[] {
    return this.acknowledged.map((m) => JSON.parse(m.value) as T);
  }
}
