// Reads a Kafka topic from the beginning, as the central system would: readTopic() until a condition
// holds over everything read (or fails after a timeout listing what came); watchTopic() calls back on
// each message as it arrives (a test can act at that moment, e.g. kill the agent).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';

export interface Delivered {
  type: string;
  seq: number;
  id: string;
  session_id?: string;
  reason?: string;
  kwh?: number;
}

export interface TopicWatch {
  messages: Delivered[];
  /** Resolves once the consumer is subscribed and running. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

export function watchTopic(brokers: string[], topic: string, onMessage: (message: Delivered, all: Delivered[]) => void): TopicWatch {
  const kafka = new Kafka({ clientId: 'topic-reader', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `topic-reader-${randomUUID()}` });
  const messages: Delivered[] = [];
  const ready = (async () => {
    await consumer.connect();
    // The agent's first message creates the topic; until the broker knows it, subscribing fails.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        break;
      } catch (error) {
        if (attempt >= 40 || !(error as { retriable?: boolean }).retriable) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    await consumer.run({
      eachMessage: async ({ message }) => {
        const parsed = JSON.parse(message.value!.toString()) as Delivered;
        messages.push(parsed);
        onMessage(parsed, messages);
      },
    });
  })();
  return { messages, ready, stop: () => consumer.disconnect() };
}

export async function readTopic(brokers: string[], topic: string, until: (messages: Delivered[]) => boolean, timeoutMs = 30_000): Promise<Delivered[]> {
  let done!: () => void;
  const met = new Promise<void>((resolve) => (done = resolve));
  const watch = watchTopic(brokers, topic, (_, all) => until(all) && done());
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`topic ${topic}: condition not met within ${timeoutMs} ms; got ${watch.messages.map((m) => `${m.seq}:${m.type}`).join(' ')}`)), timeoutMs);
  });
  try {
    await watch.ready;
    await Promise.race([met, late]);
  } finally {
    clearTimeout(timer);
    await watch.stop();
  }
  return watch.messages;
}
