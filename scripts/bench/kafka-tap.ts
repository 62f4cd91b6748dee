// Reads what the agents sent to Kafka, with the broker's own clock. The telemetry topic is created
// before any agent produces to it with message.timestamp.type=LogAppendTime (one partition, as
// the test broker's default): every record then carries the time the broker appended it, which
// is just before the acknowledgement (acks=all, one replica). Sample → append is measured
// without the consumer's own delays, so a busy box does not lengthen the figure by the tap.
import kafkajs, { Kafka, logLevel, type Consumer } from 'kafkajs';

// Node's CommonJS export detection misses this one; it is on the module object.
const { ConfigResourceTypes } = kafkajs;

export const TELEMETRY_TOPIC = 'cp_telemetry';

export interface TappedMessage {
  cpId: string;
  type: string;
  seq: number;
  id: string;
  /** The sample's time: `ts` of the message (for CONSUMO, when the meter reading was taken). */
  sampleMs: number;
  /** When the broker appended the record (LogAppendTime). */
  appendMs: number;
  /** When the tap saw it. */
  seenMs: number;
}

export interface Tap {
  readonly messages: TappedMessage[];
  /** Resolves once a message matching the predicate has arrived. */
  waitFor(predicate: (message: TappedMessage) => boolean, timeoutMs: number): Promise<TappedMessage>;
  stop(): Promise<void>;
}

function client(brokers: string, clientId: string): Kafka {
  return new Kafka({ clientId, brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 10 } });
}

/** Creates the topic with LogAppendTime, or switches an existing one to it; returns the topic's timestamp type. */
export async function prepareTelemetryTopic(brokers: string, topic = TELEMETRY_TOPIC): Promise<string> {
  const admin = client(brokers, 'charger-bench-admin').admin();
  await admin.connect();
  try {
    const configEntries = [{ name: 'message.timestamp.type', value: 'LogAppendTime' }];
    const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries }] });
    if (!created) await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries }] });
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['message.timestamp.type'] }] });
    return described.resources[0]?.configEntries[0]?.configValue ?? 'unknown';
  } finally {
    await admin.disconnect();
  }
}

/** Reads the topic from the beginning and keeps the messages of the charge points `accept` wants. */
export async function startTap(brokers: string, accept: (cpId: string) => boolean, topic = TELEMETRY_TOPIC): Promise<Tap> {
  const consumer: Consumer = client(brokers, 'charger-bench-tap').consumer({
    groupId: `charger-bench-${process.pid}-${Date.now()}`,
    maxWaitTimeInMs: 100,
    sessionTimeout: 30_000,
  });
  const messages: TappedMessage[] = [];
  let waiters: Array<{ predicate: (message: TappedMessage) => boolean; resolve: (message: TappedMessage) => void }> = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const seenMs = Date.now();
      const event = JSON.parse(message.value?.toString('utf8') ?? '{}') as { cp_id?: string; type?: string; seq?: number; id?: string; ts?: string };
      if (!event.cp_id || !accept(event.cp_id)) return;
      const tapped: TappedMessage = {
        cpId: event.cp_id,
        type: event.type ?? '',
        seq: event.seq ?? -1,
        id: event.id ?? '',
        sampleMs: Date.parse(event.ts ?? ''),
        appendMs: Number(message.timestamp),
        seenMs,
      };
      messages.push(tapped);
      waiters = waiters.filter((waiter) => {
        if (!waiter.predicate(tapped)) return true;
        waiter.resolve(tapped);
        return false;
      });
    },
  });
  return {
    messages,
    waitFor: (predicate, timeoutMs) => {
      const seen = messages.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bench: no matching message on ${topic} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          predicate,
          resolve: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
        });
      });
    },
    stop: () => consumer.disconnect(),
  };
}

/** Sample → broker append, in ms, of the CONSUMO messages in a window of sample times. */
export function consumoLatencies(messages: readonly TappedMessage[], fromMs: number, toMs: number, cpId?: (id: string) => boolean): number[] {
  return messages
    .filter((m) => m.type === 'CONSUMO' && m.sampleMs >= fromMs && m.sampleMs <= toMs && (!cpId || cpId(m.cpId)))
    .map((m) => m.appendMs - m.sampleMs);
}
