/**
 * One pass over the log from a sequence on: an ephemeral consumer (in memory, one replica, no
 * acks, like the client's ordered consumer) and pull requests of our own, so that each request can
 * carry both limits the server knows, a message count and a byte count (the client's `consume()`
 * takes one or the other).
 *
 * Why not `consume()`: counted in messages, its read-ahead had to assume every message could be
 * max_payload large, so it pulled 32 at a time (at 1 MiB) and paid one pull request per 8
 * messages: ~27k messages/s. Counted in bytes, it pulls at most 100 messages per request and
 * stalled ~40 s when a large message did not fit the bytes left of a request after small ones.
 *
 * Here a request asks for what the read-ahead has room for, in bytes and in messages, and goes
 * out once half of it is free: memory stays bounded whatever the sizes, and a log of small
 * messages costs one request per thousands of them. One request is open at a time (the server
 * hands messages round-robin to all open requests of a consumer, and their messages carry no
 * sign of which request they answer, so only a single one can be counted). It ends when its count
 * or bytes are used up (counted here as the server counts them) or the server ends it (a message
 * that does not fit its bytes left: 409; its expiry: 408), and the next goes out at once: a large
 * message after small ones is simply the next request's first. A server that refuses requests that
 * large (an operator's MaxRequestBatch or MaxRequestMaxBytes) gets requests of its limit instead.
 *
 * Order: the delivery sequence must grow by one per message; a gap, a lost consumer (no message
 * or heartbeat for two heartbeat intervals while a request is open), a deleted consumer or any
 * other refusal ends the pass early, and the caller resumes after the last message it got.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import type { LogMessage } from './rows.js';

export interface LogReader extends AsyncIterable<LogMessage> {
  /** Ends the pass: the iterator returns once the messages already buffered are taken. */
  stop(): void;
}

export interface LogReaderOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** The JetStream stream (the log). */
  stream: string;
  /** First sequence to deliver. */
  start: number;
  filterSubject?: string;
  /** A fresh inbox (the requests' replies go to `<inbox>.<n>`). */
  inbox: string;
  /** A unique consumer name. */
  name: string;
  /** Bytes of messages buffered or requested at most (raised to two of the largest messages). */
  readAheadBytes: number;
  /** Messages buffered or requested at most (each costs some memory beyond its bytes). */
  readAheadMessages: number;
  /** The server's max_payload: every request must have room for one such message. */
  maxPayload: number;
  /** How long a pull request waits for messages; heartbeats come every half of it. */
  expiresMs: number;
  /** The jetstream module's enums (loaded on first use). */
  policies: { deliverStartSequence: string; ackNone: string };
}

const NANOS_PER_MS = 1_000_000;
/** Room for a message's headers and subject on top of max_payload in a request's bytes. */
const HEADROOM = 64 * 1024;
/** A consumer nobody pulls from for this long is removed by the server (ours are deleted on stop). */
const INACTIVE_THRESHOLD_MS = 5 * 60 * 1000;

/** A message's size as the server counts it against a request's max_bytes: subject, reply, headers and payload. */
function sizeOf(msg: Msg, reply: string, data: Uint8Array): number {
  // The client's Msg has size() (the same sum), though its type does not say so.
  const withSize = msg as Msg & { size?: () => number };
  return typeof withSize.size === 'function' ? withSize.size() : msg.subject.length + reply.length + data.length;
}

interface OpenRequest {
  /** Where its statuses come (its messages keep their own subjects). */
  reply: string;
  /** Bytes the server may still send for it, counted as the server counts them (Msg.size()). */
  bytes: number;
  messages: number;
}

/** Creates the consumer and starts pulling; the returned reader yields the log's messages in order. */
export async function openLogReader(options: LogReaderOptions): Promise<LogReader> {
  const { nc, jsm, stream, name, inbox, policies, expiresMs } = options;
  await jsm.consumers.add(stream, {
    name,
    deliver_policy: policies.deliverStartSequence as never,
    opt_start_seq: options.start,
    ack_policy: policies.ackNone as never,
    max_deliver: 1,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: INACTIVE_THRESHOLD_MS * NANOS_PER_MS,
    // A string, not an array: server 2.9 knows only the single `filter_subject`.
    ...(options.filterSubject ? { filter_subject: options.filterSubject } : {}),
  });

  // A request always has room for the largest message, and a new one goes out once half the
  // read-ahead is free: so the read-ahead holds two of the largest messages at least.
  const budgetBytes = Math.max(options.readAheadBytes, 2 * (options.maxPayload + HEADROOM));
  const budgetMessages = Math.max(2, options.readAheadMessages);
  const pullSubject = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`;

  /** Lowered to what the server allows when it refuses a larger request (its account or consumer limits). */
  let maxRequestMessages = Number.POSITIVE_INFINITY;
  let maxRequestBytes = Number.POSITIVE_INFINITY;
  /** A request must have room for the largest message, or that message could never be read. */
  const leastRequestBytes = options.maxPayload + HEADROOM;

  /** The open request: one at a time, since the server hands the messages round-robin to all open ones. */
  let current: OpenRequest | undefined;
  let buffer: (LogMessage | undefined)[] = [];
  let head = 0;
  let bufferedBytes = 0;
  let serial = 0;
  let lastDelivery = 0;
  let lastHeard = performance.now();
  let done = false;
  let failure: Error | undefined;
  let wakeReader: (() => void) | undefined;

  const wake = () => {
    const wakeUp = wakeReader;
    wakeReader = undefined;
    wakeUp?.();
  };

  const finish = (error?: Error) => {
    if (done) return;
    done = true;
    failure = error;
    current = undefined;
    clearInterval(watchdog);
    sub.unsubscribe();
    // Not waited for: the server drops it after INACTIVE_THRESHOLD_MS anyway.
    jsm.consumers.delete(stream, name).catch(() => {});
    wake();
  };

  /** Sends a request for what the read-ahead has room for, once that is at least half of it. */
  const pull = () => {
    if (done || current) return;
    const roomBytes = budgetBytes - bufferedBytes;
    const roomMessages = budgetMessages - (buffer.length - head);
    if (roomBytes * 2 < budgetBytes || roomMessages * 2 < budgetMessages) return;
    const bytes = Math.min(roomBytes, maxRequestBytes);
    const messages = Math.min(roomMessages, maxRequestMessages);
    // The watchdog counts from the request, not from when the buffer filled up.
    lastHeard = performance.now();
    current = { reply: `${inbox}.${++serial}`, bytes, messages };
    nc.publish(
      pullSubject,
      JSON.stringify({
        batch: messages,
        max_bytes: bytes,
        expires: expiresMs * NANOS_PER_MS,
        idle_heartbeat: (expiresMs / 2) * NANOS_PER_MS,
      }),
      { reply: current.reply },
    );
  };

  const onMessage = (error: Error | null, msg: Msg) => {
    if (done) return;
    if (error) return finish(error);
    lastHeard = performance.now();
    const reply = msg.reply;
    if (!reply) {
      // A status: 100 a heartbeat; 404/408 the request ended without (more) messages; 409 the
      // next message did not fit its bytes left (or, on newer servers, the batch completed).
      const code = msg.headers?.code ?? 0;
      if (code === 100) return;
      const description = msg.headers?.description ?? '';
      if (code === 404 || code === 408 || (code === 409 && /exceeds maxbytes|batch completed/i.test(description))) {
        // A late word about a request already counted out changes nothing.
        if (current?.reply === msg.subject) current = undefined;
        return pull();
      }
      if (code === 409 && /exceeded maxrequest(batch|maxbytes)/i.test(description) && current?.reply === msg.subject) {
        // "Exceeded MaxRequestBatch of 1000": ask for at most that from now on (half as much if it says no number).
        const limit = Number(/(\d+)\s*$/.exec(description)?.[1] ?? Number.NaN);
        if (/batch/i.test(description)) maxRequestMessages = Math.max(1, limit || Math.floor(current.messages / 2));
        else maxRequestBytes = limit || Math.floor(current.bytes / 2);
        current = undefined;
        if (maxRequestBytes < leastRequestBytes)
          return finish(
            new Error(`JetStream allows pull requests of ${maxRequestBytes} bytes, less than a message may need (${leastRequestBytes})`),
          );
        return pull();
      }
      if (code === 400) return finish(new Error(`JetStream refused a pull request: ${code} ${description}`));
      // Consumer deleted or lost (503), a leader change, …: the caller resumes on a new consumer.
      return finish();
    }
    // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery seq>.<nanos>.<pending>, or
    // with <domain>.<account hash> after ACK on newer servers.
    const tokens = reply.split('.');
    const at = tokens.length === 9 ? 5 : 7;
    const seq = Number(tokens[at]);
    const delivery = Number(tokens[at + 1]);
    if (delivery !== lastDelivery + 1) return finish();
    lastDelivery = delivery;
    const data = msg.data;
    buffer.push({ seq, headers: msg.headers, data, timeMs: Number(tokens[at + 2]) / NANOS_PER_MS });
    bufferedBytes += data.length;
    wake();
    if (current) {
      current.bytes -= sizeOf(msg, reply, data);
      // Its count or its bytes used up, the server ends it without a word.
      if (--current.messages <= 0 || current.bytes <= 0) {
        current = undefined;
        pull();
      }
    }
  };

  const sub = nc.subscribe(`${inbox}.*`, { callback: onMessage });
  // A consumer lost with its node (a failover the connection did not notice) sends nothing more.
  const watchdog = setInterval(() => {
    if (current && performance.now() - lastHeard > expiresMs) finish();
  }, expiresMs / 2);
  pull();

  return {
    stop: () => finish(),
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          if (head < buffer.length) {
            const message = buffer[head] as LogMessage;
            buffer[head++] = undefined;
            bufferedBytes -= message.data.length;
            if (head >= 4096 && head * 2 >= buffer.length) {
              buffer = buffer.slice(head);
              head = 0;
            }
            pull();
            yield message;
            continue;
          }
          if (done) {
            if (failure) throw failure;
            return;
          }
          await new Promise<void>((resolve) => {
            wakeReader = resolve;
          });
        }
      } finally {
        finish();
      }
    },
  };
}
