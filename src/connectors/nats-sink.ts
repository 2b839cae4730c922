/**
 * NATS sink: subject `<subject>.<category>.<type>`. When a JetStream stream captures the
 * subject, each message is a JetStream publish with `Nats-Msg-Id` = event id (the stream
 * drops a repeat within its duplicate window) and the batch counts once every PubAck is in;
 * otherwise a core publish with the same headers, flushed (NATS core has no delivery ack).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { loadDriver, type OutboundMessage, type Sink, SinkUnavailableError } from './sink.js';

export interface NatsSinkOptions {
  /** nats://host:port (comma-separated for a cluster). */
  servers: string;
  /** Subject prefix: messages go to `<subject>.<category>.<type>`. */
  subject: string;
}

/** NATS subject tokens may not hold spaces, dots or wildcards: those become '_'. */
const token = (text: string) => text.replace(/[\s.*>]/g, '_') || '_';
export const subjectOf = (prefix: string, message: OutboundMessage): string =>
  `${prefix}.${token(message.category)}.${token(message.type)}`;

const loadNats = () =>
  loadDriver('NATS connector', '@nats-io/transport-node', () => import('@nats-io/transport-node')).then(async (transport) => ({
    transport,
    jetstream: await loadDriver('NATS connector', '@nats-io/jetstream', () => import('@nats-io/jetstream')),
  }));

export function natsSink(options: NatsSinkOptions): Sink {
  type Opened = { nc: NatsConnection; drivers: Awaited<ReturnType<typeof loadNats>> };
  let opening: Promise<Opened> | undefined;
  // Subject → whether a JetStream stream captures it (asked once per subject and connection).
  const captured = new Map<string, Promise<boolean>>();

  const open = () => {
    opening ??= (async () => {
      const drivers = await loadNats();
      const nc = await drivers.transport.connect({ servers: options.servers.split(','), timeout: 5000, maxReconnectAttempts: -1 });
      void nc.closed().then(() => {
        opening = undefined;
        captured.clear();
      });
      return { nc, drivers };
    })();
    const attempt = opening;
    attempt.catch(() => {
      if (opening === attempt) opening = undefined;
    });
    return attempt;
  };

  const isCaptured = ({ nc, drivers }: Opened, subject: string) => {
    let known = captured.get(subject);
    if (!known) {
      known = drivers.jetstream
        .jetstreamManager(nc)
        .then((jsm) => jsm.streams.find(subject))
        .then(
          () => true,
          (error: Error) => {
            if (/no stream matches subject/i.test(error.message)) return false;
            captured.delete(subject);
            throw error;
          },
        );
      captured.set(subject, known);
    }
    return known;
  };

  return {
    type: 'nats',
    target: `${options.servers} subject ${options.subject}.>`,
    prepare: async () => {
      await loadNats();
    },
    async deliver(messages: OutboundMessage[]) {
      try {
        const opened = await open();
        const { nc, drivers } = opened;
        const js = drivers.jetstream.jetstream(nc);
        const acks: Promise<unknown>[] = [];
        let core = false;
        for (const message of messages) {
          const subject = subjectOf(options.subject, message);
          const h = drivers.transport.headers();
          h.set('Nats-Msg-Id', message.id);
          h.set('Logline-Position', message.position);
          h.set('Logline-Stream', message.streamId);
          const data = JSON.stringify(message.payload);
          if (await isCaptured(opened, subject)) acks.push(js.publish(subject, data, { msgID: message.id, headers: h }));
          else {
            nc.publish(subject, data, { headers: h });
            core = true;
          }
        }
        await Promise.all(acks);
        if (core) await nc.flush();
      } catch (error) {
        if ((error as { code?: string }).code === 'DriverMissing') throw error;
        throw new SinkUnavailableError(`NATS ${options.servers}: ${(error as Error).message}`, { cause: error });
      }
    },
    async close() {
      const current = opening;
      opening = undefined;
      await current?.then(({ nc }) => nc.close()).catch(() => {});
    },
  };
}
