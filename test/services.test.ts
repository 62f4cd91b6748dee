// The test brokers themselves: what every broker test relies on, proven against the real ones.
// The outage tests stop and restart a broker of their own, so that test files running at the
// same time keep the shared brokers.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { connectAsync } from 'mqtt';
import { requireBrokers, startPrivateServices, type Brokers, type PrivateServices } from './support/services.js';

const DELIVERY_TIMEOUT_MS = 30_000;

let shared: Brokers;
let outage: PrivateServices | undefined;

before(() => {
  shared = requireBrokers();
});

after(async () => {
  await outage?.stop();
});

test('kafka gives back a message produced with acks=-1 to a new consumer group', { timeout: 90_000 }, async () => {
  const kafka = kafkaClient(shared.kafkaBrokers);
  const topic = await createTopic(kafka);

  await produce(kafka, topic, 'first');

  assert.equal(await readFirstMessage(kafka, topic), 'first');
});

test('mosquitto delivers a QoS 1 publish to a subscriber', { timeout: 30_000 }, async () => {
  const payload = `hello-${randomUUID()}`;

  assert.equal(await publishAndReceive(shared.mqttUrl, payload), payload);
});

test('a stopped kafka refuses connections, and restarted keeps its committed messages', { timeout: 240_000 }, async (t) => {
  outage = await startPrivateServices();
  const kafka = kafkaClient(outage.kafkaBrokers);
  const topic = await createTopic(kafka);
  await produce(kafka, topic, 'before-outage');

  await outage.stopKafka();
  await assert.rejects(kafkaClient(outage.kafkaBrokers, 0).admin().connect());

  const restartStartedMs = Date.now();
  await outage.startKafka();
  t.diagnostic(`kafka restart took ${Date.now() - restartStartedMs} ms`);

  assert.equal(await readFirstMessage(kafka, topic), 'before-outage');
  await produce(kafka, topic, 'after-outage');
});

test('a stopped mosquitto refuses connections, and restarted serves the same url', { timeout: 240_000 }, async () => {
  outage ??= await startPrivateServices();
  const { mqttUrl } = outage;

  await outage.stopMqtt();
  await assert.rejects(connectAsync(mqttUrl, { connectTimeout: 2_000, reconnectPeriod: 0 }));
  await outage.startMqtt();

  assert.equal(await publishAndReceive(mqttUrl, 'after-outage'), 'after-outage');
});

function kafkaClient(brokers: string[], retries = 5): Kafka {
  return new Kafka({
    clientId: 'services-test',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    retry: { retries },
  });
}

async function createTopic(kafka: Kafka): Promise<string> {
  const topic = `services-test-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

async function produce(kafka: Kafka, topic: string, value: string): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [{ key: 'cp-1', value }] });
  } finally {
    await producer.disconnect();
  }
}

/** The first message of the topic, read by a consumer group that has never read it. */
async function readFirstMessage(kafka: Kafka, topic: string): Promise<string> {
  const consumer = kafka.consumer({ groupId: `services-test-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const first = new Promise<string>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(message.value?.toString() ?? '') });
    });
    return await withTimeout(first, `no message from ${topic}`);
  } finally {
    await consumer.disconnect();
  }
}

async function publishAndReceive(mqttUrl: string, payload: string): Promise<string> {
  const topic = `services-test/${randomUUID()}`;
  const client = await connectAsync(mqttUrl, { connectTimeout: 5_000, reconnectPeriod: 0 });
  try {
    await client.subscribeAsync(topic, { qos: 1 });
    const received = new Promise<string>((resolve) => {
      client.on('message', (messageTopic, message) => {
        if (messageTopic === topic) resolve(message.toString());
      });
    });
    await client.publishAsync(topic, payload, { qos: 1 });
    return await withTimeout(received, `no message on ${topic}`);
  } finally {
    await client.endAsync();
  }
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${DELIVERY_TIMEOUT_MS} ms`)), DELIVERY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
