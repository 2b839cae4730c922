/**
 * MQTT sink (MQTT 5): publishes each message at QoS 1 to `<topic>/<category>/<type>` with the
 * event id and position as user properties; the batch counts once every PUBACK is in.
 */
import type { MqttClient } from 'mqtt';
import { loadDriver, type OutboundMessage, redactUrl, type Sink, SinkUnavailableError } from './sink.js';

export interface MqttSinkOptions {
  /** mqtt://host:port */
  url: string;
  /** Topic prefix. */
  topic: string;
  clientId?: string;
}

/** MQTT topic levels may not hold '/', '+' or '#': those become '_'. */
const level = (text: string) => text.replace(/[/+#]/g, '_') || '_';
export const topicOf = (prefix: string, message: OutboundMessage): string => `${prefix}/${level(message.category)}/${level(message.type)}`;

export function mqttSink(options: MqttSinkOptions): Sink {
  let opening: Promise<MqttClient> | undefined;
  const driver = () => loadDriver('MQTT connector', 'mqtt', () => import('mqtt'));

  const open = () => {
    opening ??= (async () => {
      const mqtt = await driver();
      // No automatic reconnect: a lost connection fails the delivery, the connector retries it.
      const client = await mqtt.connectAsync(options.url, {
        protocolVersion: 5,
        clientId: options.clientId,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      client.on('error', () => {});
      client.on('close', () => {
        if (opening === current) opening = undefined;
      });
      return client;
    })();
    const current = opening;
    current.catch(() => {
      if (opening === current) opening = undefined;
    });
    return current;
  };

  return {
    type: 'mqtt',
    target: `${redactUrl(options.url)} topic ${options.topic}/#`,
    prepare: async () => {
      await driver();
    },
    async deliver(messages: OutboundMessage[]) {
      try {
        const client = await open();
        await Promise.all(
          messages.map((message) =>
            client.publishAsync(topicOf(options.topic, message), JSON.stringify(message.payload), {
              qos: 1,
              properties: {
                contentType: 'application/json',
                userProperties: { 'logline-id': message.id, 'logline-position': message.position, 'logline-stream': message.streamId },
              },
            }),
          ),
        );
      } catch (error) {
        if ((error as { code?: string }).code === 'DriverMissing') throw error;
        const current = opening;
        opening = undefined;
        current?.then((client) => client.end(true)).catch(() => {});
        throw new SinkUnavailableError(`MQTT ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error });
      }
    },
    async close() {
      const current = opening;
      opening = undefined;
      await current?.then((client) => client.endAsync()).catch(() => {});
    },
  };
}
