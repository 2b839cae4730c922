/**
 * RabbitMQ sink: publishes each message to a topic exchange with routing key
 * `<category>.<type>`, persistent, `messageId` = event id, and waits for the broker's
 * publisher confirms before the batch counts as delivered. A lost connection is dropped and
 * opened again on the next delivery (the connector's retry and breaker pace that).
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { loadDriver, type OutboundMessage, redactUrl, type Sink, SinkUnavailableError } from './sink.js';

export interface RabbitMqSinkOptions {
  /** amqp://user:password@host:port/vhost */
  url: string;
  /** A topic exchange, declared durable if missing. */
  exchange: string;
}

export const routingKeyOf = (message: OutboundMessage): string => `${message.category}.${message.type}`;

export function rabbitMqSink(options: RabbitMqSinkOptions): Sink {
  let opening: Promise<{ connection: ChannelModel; channel: ConfirmChannel }> | undefined;
  const driver = () => loadDriver('RabbitMQ connector', 'amqplib', () => import('amqplib'));

  const open = () => {
    opening ??= (async () => {
      const amqp = await driver();
      const connection = await amqp.connect(options.url, { timeout: 5000 });
      const forget = () => {
        opening = undefined;
      };
      // Errors also arrive as 'close'; listening keeps them from crashing the process.
      connection.on('error', forget);
      connection.on('close', forget);
      const channel = await connection.createConfirmChannel();
      channel.on('error', forget);
      channel.on('close', forget);
      await channel.assertExchange(options.exchange, 'topic', { durable: true });
      return { connection, channel };
    })();
    const attempt = opening;
    attempt.catch(() => {
      if (opening === attempt) opening = undefined;
    });
    return attempt;
  };

  return {
    type: 'rabbitmq',
    target: `${redactUrl(options.url)} exchange ${options.exchange}`,
    prepare: async () => {
      await driver();
    },
    async deliver(messages: OutboundMessage[]) {
      try {
        const { channel } = await open();
        for (const message of messages) {
          channel.publish(options.exchange, routingKeyOf(message), Buffer.from(JSON.stringify(message.payload)), {
            persistent: true,
            messageId: message.id,
            contentType: 'application/json',
            type: message.type,
            headers: { 'logline-position': message.position, 'logline-stream': message.streamId },
          });
        }
        await channel.waitForConfirms();
      } catch (error) {
        if ((error as { code?: string }).code === 'DriverMissing') throw error;
        // A half-broken channel would fail every later publish: start over with a new one.
        const current = opening;
        opening = undefined;
        current?.then(({ connection }) => connection.close()).catch(() => {});
        throw new SinkUnavailableError(`RabbitMQ ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error });
      }
    },
    async close() {
      const current = opening;
      opening = undefined;
      await current?.then(({ connection }) => connection.close()).catch(() => {});
    },
  };
}
