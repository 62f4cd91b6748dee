// Test support, never imported by the daemon: broker links whose behaviour a test scripts.
import type { LinkStatus, MessageSink, MqttMessageKind, MqttSink } from '../types.js';

/** `hold`: the send stays pending until the test calls release(), then acknowledges. */
export type SendBehaviour = 'ack' | 'fail' | 'hang' | 'deliver-then-fail' | 'hold';

/** A Kafka stand-in: records what it "acknowledged" and lets a test await a condition on it. */
export class FakeKafkaSink implements MessageSink {
  readonly delivered: Array<{ topic: string; key: string; value: string }> = [];
  sends = 0;
  /** How the next sends behave, consumed one per send; `otherwise` after that. */
  script: SendBehaviour[] = [];
  otherwise: SendBehaviour = 'ack';
  private waiters: Array<{ check: () => boolean; resolve: () => void }> = [];
  private held: Array<() => void> = [];

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  status(): LinkStatus {
    return { enabled: true, connected: this.otherwise === 'ack' };
  }

  send(topic: string, messages: Array<{ key: string; value: string }>): Promise<void> {
    this.sends += 1;
    const behaviour = this.script.shift() ?? this.otherwise;
    if (behaviour === 'hang') return new Promise<void>(() => {});
    if (behaviour === 'hold') {
      return new Promise<void>((resolve) => {
        this.held.push(() => {
          this.delivered.push(...messages.map((message) => ({ topic, ...message })));
          this.notify();
          resolve();
        });
        this.notify();
      });
    }
    if (behaviour === 'fail') return Promise.reject(new Error('FAKE_BROKER_DOWN'));
    this.delivered.push(...messages.map((message) => ({ topic, ...message })));
    this.notify();
    if (behaviour === 'deliver-then-fail') return Promise.reject(new Error('FAKE_ACK_LOST'));
    return Promise.resolve();
  }

  /** Sends started with `hold` that have not been released yet. */
  get heldSends(): number {
    return this.held.length;
  }

  /** Acknowledges every held send, in the order they were made. */
  release(): void {
    for (const acknowledge of this.held.splice(0)) acknowledge();
  }

  /** The delivered values, parsed. */
  events(): Array<Record<string, unknown> & { seq: number; id: string; type: string }> {
    return this.delivered.map((message) => JSON.parse(message.value));
  }

  /** Resolves once `check()` holds (checked now and after every delivery). */
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ check, resolve }));
  }

  private notify(): void {
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.check()) return true;
      waiter.resolve();
      return false;
    });
  }
}

/** An MQTT stand-in that records every publish. */
export class FakeMqttSink implements MqttSink {
  readonly published: Array<{ kind: MqttMessageKind; payload: string }> = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  publish(kind: MqttMessageKind, payload: string): void {
    this.published.push({ kind, payload });
  }
  status() {
    return { enabled: true, connected: true, queued: 0, droppedMeter: 0 };
  }
  of(kind: MqttMessageKind): Array<Record<string, unknown>> {
    return this.published.filter((message) => message.kind === kind).map((message) => JSON.parse(message.payload));
  }
}
