/**
 * The broker sinks against the machine's real brokers: RabbitMQ (stopped and started while
 * events flow), NATS (JetStream with Nats-Msg-Id, and core), MQTT (QoS 1). The brokers must be
 * up: an unreachable one fails these tests, it never skips them.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttSink, natsSink, rabbitMqSink, startConnector } from '../../src/connectors.js';
import { createMemoryStore } from '../../src/memory.js';
import { deduplicated, type Received, versionsByStream, waitFor } from './webhook-target.js';

const run = promisify(execFile);
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});
const unique = () => randomBytes(4).toString('hex');

/** Reads a RabbitMQ queue, reconnecting after the broker comes back. */
async function rabbitConsumer(queue: string, exchange: string) {
  const received: Received[] = [];
  let connection: amqp.ChannelModel | undefined;
  const attach = async () => {
    connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => {});
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, 'order.#');
    await channel.consume(queue, (message) => {
      if (!message) return;
      const payload = JSON.parse(message.content.toString()) as { streamId: string; streamVersion: number; type: string };
      received.push({
        id: message.properties.messageId,
        position: String(message.properties.headers?.['logline-position']),
        streamId: payload.streamId,
        streamVersion: payload.streamVersion,
        type: payload.type,
        payload,
      });
      channel.ack(message);
    });
  };
  await attach();
  return {
    received,
    reattach: attach,
    async dispose() {
      await connection?.close().catch(() => {});
      const admin = await amqp.connect(AMQP_URL);
      const channel = await admin.createChannel();
      await channel.deleteQueue(queue);
      await channel.deleteExchange(exchange);
      await admin.close();
    },
  };
}

describe('broker connectors', () => {
  it('RabbitMQ stopped and started mid-stream: every event arrives, per-stream order kept after de-duplication by id', async () => {
    const store = createMemoryStore();
    cleanups.push(() => store.close());
    const exchange = `logline-test-${unique()}`;
    const consumer = await rabbitConsumer(`${exchange}-q`, exchange);
    cleanups.push(() => consumer.dispose());
    const connector = await startConnector(store, {
      name: 'to-rabbit',
      source: { category: 'order' },
      sink: rabbitMqSink({ url: AMQP_URL, exchange }),
      delivery: {
        batchSize: 20,
        timeoutMs: 2000,
        retry: { initialDelayMs: 50, maxDelayMs: 500 },
        breaker: { failures: 3, halfOpenAfterMs: 500 },
      },
    });
    cleanups.push(() => connector.stop());

    const appendSome = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        await store.append(`order-${i % 7}`, [{ type: 'Placed', data: { i } }]);
        if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await appendSome(0, 100);
    let restarted = false;
    try {
      await run('rabbitmqctl', ['stop_app']);
      await appendSome(100, 100);
      await waitFor(() => connector.breaker === 'open', 10_000, 'the breaker to open while the broker is down');
    } finally {
      await run('rabbitmqctl', ['start_app']);
      await run('rabbitmqctl', ['await_startup']);
      restarted = true;
    }
    expect(restarted).toBe(true);
    await consumer.reattach();
    await appendSome(200, 100);
    await waitFor(() => deduplicated(consumer.received).length >= 300, 30_000, 'all 300 events at the RabbitMQ consumer');

    const kept = deduplicated(consumer.received);
    const ids: string[] = [];
    for await (const event of store.readAll({})) ids.push(event.id);
    expect(new Set(kept.map((m) => m.id))).toEqual(new Set(ids));
    for (const versions of versionsByStream(kept).values()) expect(versions).toEqual(versions.map((_, i) => i + 1));
    expect(connector.stats().breakerOpened).toBeGreaterThanOrEqual(1);
    console.log(`RabbitMQ: ${consumer.received.length} messages for 300 events (${consumer.received.length - 300} duplicates)`);
  }, 60_000);

  it('NATS: a JetStream publish with Nats-Msg-Id when a stream captures the subject, else a core publish', async () => {
    const store = createMemoryStore();
    cleanups.push(() => store.close());
    const prefix = `lltest${unique()}`;
    const nc = await connectNats({ servers: '127.0.0.1:4222' });
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    // Only order events are captured by a stream; invoice events go through core NATS.
    await jsm.streams.add({ name: prefix, subjects: [`${prefix}.order.>`] });
    cleanups.push(() => jsm.streams.delete(prefix));
    const core: Array<{ subject: string; id?: string }> = [];
    const sub = nc.subscribe(`${prefix}.invoice.>`, {
      callback: (_error, message) => {
        core.push({ subject: message.subject, id: message.headers?.get('Nats-Msg-Id') });
      },
    });
    await nc.flush();
    cleanups.push(async () => sub.unsubscribe());

    await store.append('order-1', [
      { type: 'Placed', data: {} },
      { type: 'Paid', data: {} },
    ]);
    await store.append('invoice-1', [{ type: 'Issued', data: {} }]);
    const connector = await startConnector(store, {
      name: 'to-nats',
      sink: natsSink({ servers: 'nats://127.0.0.1:4222', subject: prefix }),
    });
    cleanups.push(() => connector.stop());
    await waitFor(async () => (await jsm.streams.info(prefix)).state.messages === 2 && core.length === 1, 10_000, 'NATS deliveries');

    const ids: Record<string, string> = {};
    for await (const event of store.readAll({})) ids[event.type] = event.id;
    const stored = await Promise.all([1, 2].map((seq) => jsm.streams.getMessage(prefix, { seq })));
    expect(stored.map((m) => [m?.subject, m?.header.get('Nats-Msg-Id')])).toEqual([
      [`${prefix}.order.Placed`, ids.Placed],
      [`${prefix}.order.Paid`, ids.Paid],
    ]);
    expect(core).toEqual([{ subject: `${prefix}.invoice.Issued`, id: ids.Issued }]);
    // A redelivery is dropped by the stream: the id is its de-duplication key.
    await connector.stop();
    const again = await startConnector(store, {
      name: 'to-nats-again',
      sink: natsSink({ servers: 'nats://127.0.0.1:4222', subject: prefix }),
    });
    cleanups.push(() => again.stop());
    await waitFor(() => again.stats().delivered === 3, 10_000, 'the second connector to deliver');
    expect((await jsm.streams.info(prefix)).state.messages).toBe(2);
  }, 30_000);

  it('MQTT: QoS 1 publishes carrying the event id and position', async () => {
    const store = createMemoryStore();
    cleanups.push(() => store.close());
    const topic = `logline-test-${unique()}`;
    const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { protocolVersion: 5 });
    cleanups.push(() => client.endAsync());
    const got: Array<{ topic: string; id: unknown; position: unknown; qos: number }> = [];
    client.on('message', (t, _payload, packet) =>
      got.push({
        topic: t,
        id: packet.properties?.userProperties?.['logline-id'],
        position: packet.properties?.userProperties?.['logline-position'],
        qos: packet.qos,
      }),
    );
    await client.subscribeAsync(`${topic}/#`, { qos: 1 });
    await store.append('order-1', [
      { type: 'Placed', data: {} },
      { type: 'Paid', data: {} },
    ]);
    const connector = await startConnector(store, {
      name: 'to-mqtt',
      mapping: 'notification',
      sink: mqttSink({ url: 'mqtt://127.0.0.1:1883', topic }),
    });
    cleanups.push(() => connector.stop());
    await waitFor(() => got.length === 2, 10_000, 'MQTT deliveries');
    const events: Array<{ id: string; position: bigint }> = [];
    for await (const event of store.readAll({})) events.push(event);
    expect(got).toEqual([
      { topic: `${topic}/order/Placed`, id: events[0]?.id, position: String(events[0]?.position), qos: 1 },
      { topic: `${topic}/order/Paid`, id: events[1]?.id, position: String(events[1]?.position), qos: 1 },
    ]);
  }, 30_000);
});
