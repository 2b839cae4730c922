/**
 * The log reader (src/stores/nats/reader.ts) with a tiny read-ahead, so that a handful of messages
 * cross many request ends: by message count, and by bytes (a large message that does not fit the
 * bytes left of a request after small ones).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/index.js';
import type { NatsEventStore } from '../../../src/nats.js';
import { type LogReader, openLogReader } from '../../../src/stores/nats/reader.js';
import { event } from '../../helpers/collect.js';
import { freshNatsUrl, requireNats } from '../../helpers/nats.js';

const reachable = await requireNats();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function fresh(): Promise<NatsEventStore> {
  const { url, drop } = freshNatsUrl();
  cleanups.push(drop);
  const store = (await openStore(url)) as NatsEventStore;
  cleanups.push(() => store.close());
  return store;
}

const LARGE = 50_000;

/** 20 small appends, then 10 of ~50 KB: more than one request of the tiny read-ahead holds. */
async function smallThenLarge(store: NatsEventStore): Promise<number> {
  for (let i = 0; i < 20; i++) await store.append(`small-${i % 3}`, [event('Small', { i })]);
  for (let i = 0; i < 10; i++) await store.append('large', [event('Large', { i, pad: 'p'.repeat(LARGE) })]);
  return (await store.manager.streams.info(store.layout.log)).state.last_seq;
}

let serial = 0;
/** A read-ahead of 8 messages or 128 KiB (the reader's least: two messages of maxPayload 0 and their headroom). */
function tinyReader(store: NatsEventStore, start = 1): Promise<LogReader> {
  const name = `reader_test_${process.pid}_${++serial}`;
  return openLogReader({
    nc: store.connection,
    jsm: store.manager,
    stream: store.layout.log,
    start,
    inbox: `_INBOX.${name}`,
    name,
    readAheadBytes: 0,
    readAheadMessages: 8,
    maxPayload: 0,
    expiresMs: 2000,
    policies: { deliverStartSequence: 'by_start_sequence', ackNone: 'none' },
  });
}

describe.skipIf(!reachable)('nats log reader', () => {
  it('delivers every message once and in order across request ends, a large message after small ones at once', async () => {
    const store = await fresh();
    const last = await smallThenLarge(store);
    const reader = await tinyReader(store);
    const started = performance.now();
    const seqs: number[] = [];
    for await (const message of reader) {
      seqs.push(message.seq);
      if (message.seq === last) break;
    }
    expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    // A request ended by a message that did not fit its bytes is followed by the next at once.
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('holds no more than its read-ahead ahead of a slow caller, in messages and in bytes', async () => {
    const store = await fresh();
    const last = await smallThenLarge(store);
    const reader = await tinyReader(store);
    const name = `reader_test_${process.pid}_${serial}`;
    const deliveredAhead = async (taken: number) => {
      await new Promise((r) => setTimeout(r, 300));
      return (await store.manager.consumers.info(store.layout.log, name)).delivered.stream_seq - taken;
    };
    let taken = 0;
    for await (const message of reader) {
      taken = message.seq;
      // 8 messages ahead at most while they are small; 2 of ~50 KB (128 KiB).
      if (taken === 1) expect(await deliveredAhead(taken)).toBeLessThanOrEqual(8);
      if (taken === 21) expect(await deliveredAhead(taken)).toBeLessThanOrEqual(2);
      if (taken === last) break;
    }
    expect(taken).toBe(last);
  });

  it('asks for less when the consumer allows fewer messages per pull request', async () => {
    const store = await fresh();
    const last = await smallThenLarge(store);
    const reader = await tinyReader(store);
    const name = `reader_test_${process.pid}_${serial}`;
    // As an operator's limit would: pulls of more than 3 messages are refused from now on.
    const info = await store.manager.consumers.info(store.layout.log, name);
    await store.manager.consumers.update(store.layout.log, name, { ...info.config, max_batch: 3 });
    const seqs: number[] = [];
    for await (const message of reader) {
      seqs.push(message.seq);
      if (message.seq === last) break;
    }
    expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
  });

  it('starts where asked and ends when stopped', async () => {
    const store = await fresh();
    await smallThenLarge(store);
    const reader = await tinyReader(store, 18);
    const seqs: number[] = [];
    for await (const message of reader) {
      seqs.push(message.seq);
      if (message.seq === 19) reader.stop();
    }
    // Stopped after 19: what was buffered already may still come, never anything out of order.
    expect(seqs.slice(0, 2)).toEqual([18, 19]);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => 18 + i));
  });
});
