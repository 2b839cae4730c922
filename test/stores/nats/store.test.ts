/** NATS-specific behaviour beyond the contract: URL options, limits from max_payload, idempotency beyond the dedup window. */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { AppendTooLargeError, InvalidStoreUrlError, openStore, SchemaTooNewError, StoreUnavailableError } from '../../../src/index.js';
import { type NatsEventStore, openNatsStore } from '../../../src/nats.js';
import { collect, event } from '../../helpers/collect.js';
import { freshNatsUrl, NATS_URL, requireNats } from '../../helpers/nats.js';

const reachable = await requireNats();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function fresh(query = ''): Promise<NatsEventStore> {
  const { url, drop } = freshNatsUrl(NATS_URL, query);
  cleanups.push(drop);
  const store = (await openStore(url)) as NatsEventStore;
  cleanups.push(() => store.close());
  return store;
}

/** Shrinks the log's de-duplication window, so a test can outlive it in milliseconds. */
async function shortDedupWindow(store: NatsEventStore): Promise<void> {
  const info = await store.manager.streams.info(store.layout.log);
  await store.manager.streams.update(store.layout.log, { ...info.config, duplicate_window: 100 * 1_000_000 });
  await new Promise((r) => setTimeout(r, 250));
}

describe('nats store URL', () => {
  it.each([
    ['nats://', /no server is given/],
    ['nats://127.0.0.1:4222?replicas=7', /replicas must be an integer from 1 to 5/],
    ['nats://127.0.0.1:4222?colour=blue', /unknown parameter 'colour'/],
    ['nats://127.0.0.1:4222?stream=has.dot', /stream must be/],
    ['nats://127.0.0.1:4222?prefix=a..b', /prefix must be/],
    ['nats://bad host:4222', /is not host\[:port\]/],
  ])('rejects %j with a clear error', async (url, message) => {
    const error = await openStore(url).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidStoreUrlError);
    expect(error.message).toMatch(message);
  });

  it('fails fast with StoreUnavailable when no server answers', async () => {
    const started = performance.now();
    await expect(openStore('nats://127.0.0.1:1,127.0.0.1:2')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe.skipIf(!reachable)('nats store', () => {
  it('opens with several seed servers, its own stream name and subject prefix', async () => {
    const { url, stream, drop } = freshNatsUrl('nats://127.0.0.1:4222,localhost:4222');
    cleanups.push(drop);
    const store = (await openStore(url)) as NatsEventStore;
    cleanups.push(() => store.close());
    expect(store.backend).toBe('nats');
    expect(store.layout.log).toBe(stream);
    const { position } = await store.append('order.7', [event('Placed'), event('Paid')]);
    const info = await store.manager.streams.info(stream, { subjects_filter: '>' });
    // One message for the append, on one subject token (the '.' of the stream id is encoded).
    expect(info.state.messages).toBe(1);
    expect(Object.keys(info.state.subjects ?? {})).toEqual([`${store.layout.prefix}.order%2E7`]);
    expect(position).toBe(BigInt(info.state.last_seq) * 1_000_000n);
    expect((await store.listStreams()).map((s) => s.streamId)).toEqual(['order.7']);
  });

  it('derives its append limit from the server max_payload: a clear error, nothing stored', async () => {
    const store = await fresh();
    expect(store.maxPayload).toBe(store.connection.info?.max_payload);
    expect(store.limits.maxAppendBytes).toBe(Math.min(16 * 1024 * 1024, store.maxPayload));
    const half = 'h'.repeat(Math.ceil(store.maxPayload / 2));
    const started = performance.now();
    const error = await store.append('big', [event('A', half), event('B', half)]).catch((e) => e);
    expect(error).toBeInstanceOf(AppendTooLargeError);
    expect(error.details).toMatchObject({ limit: 'bytes', max: store.maxPayload });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await store.streamVersion('big')).toBe(0);
    expect((await store.stats()).events).toBe(0);
  });

  it('recognises a retry after the de-duplication window has passed (stored ids are checked)', async () => {
    const store = await fresh();
    await shortDedupWindow(store);
    const batch = [event('Paid', { n: 1 }, { id: randomUUID() }), event('Receipted', {}, { id: randomUUID() })];
    const first = await store.append('pay-1', batch, { expectedVersion: 'no_stream' });
    await store.append('pay-1', [event('Later')]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await store.append('pay-1', batch, { expectedVersion: 'no_stream' })).toEqual(first);
    await expect(store.append('pay-2', batch)).rejects.toMatchObject({ code: 'IdempotencyConflict' });
    expect((await collect(store.read('pay-1'))).map((e) => e.type)).toEqual(['Paid', 'Receipted', 'Later']);
    expect((await store.stats()).events).toBe(3);
  });

  it('indexes the message of a writer that died before indexing it, before anything else is appended', async () => {
    const store = await fresh();
    await shortDedupWindow(store);
    const ids = [randomUUID(), randomUUID()];
    const first = await store.append('acc-1', [event('Opened', {}, { id: ids[0] }), event('Funded', {}, { id: ids[1] })]);
    // What a writer that crashed between its publish and its index writes leaves behind.
    for (const id of ids) await store.manager.streams.purge(store.layout.ids, { filter: `${store.layout.prefix}_ids.${id}` });
    await new Promise((r) => setTimeout(r, 300));
    const other = (await openStore(`${NATS_URL}?stream=${store.layout.log}&prefix=${store.layout.prefix}`)) as NatsEventStore;
    cleanups.push(() => other.close());
    // Another process retries the same append: recognised, not stored twice.
    expect(await other.append('acc-1', [event('Opened', {}, { id: ids[0] }), event('Funded', {}, { id: ids[1] })])).toEqual(first);
    // And the id cannot be reused in another stream either.
    await expect(other.append('acc-2', [event('Opened', {}, { id: ids[0] })])).rejects.toMatchObject({ code: 'IdempotencyConflict' });
    expect((await other.stats()).events).toBe(2);
  });

  it('the same append sent at once by two processes is stored once; both get its result', async () => {
    const store = await fresh();
    const other = (await openStore(`${NATS_URL}?stream=${store.layout.log}&prefix=${store.layout.prefix}`)) as NatsEventStore;
    cleanups.push(() => other.close());
    for (let round = 0; round < 10; round++) {
      const events = [event('Paid', { round }, { id: randomUUID() }), event('Receipted', { round }, { id: randomUUID() })];
      const [a, b] = await Promise.all([store.append('race-1', events), other.append('race-1', events)]);
      expect(a).toEqual(b);
      expect(a.streamVersion).toBe(2 * (round + 1));
    }
    expect((await collect(store.read('race-1'))).map((e) => e.streamVersion)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('readAll streams through a large message after many small ones without stalling', async () => {
    const store = await fresh();
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.append(`small-${i % 10}`, [event('Small', { i })])));
    await store.append(
      'big',
      Array.from({ length: 100 }, (_, i) => event('Big', { i, pad: 'p'.repeat(300) })),
    );
    const started = performance.now();
    expect(await collect(store.readAll())).toHaveLength(400);
    // A byte-bounded pull used to wait ~40 s for its request to expire at the large message.
    expect(performance.now() - started).toBeLessThan(5000);
  }, 20_000);

  it('refuses streams written by a newer layout', async () => {
    const { url, stream, drop } = freshNatsUrl();
    cleanups.push(drop);
    const store = (await openStore(url)) as NatsEventStore;
    const info = await store.manager.streams.info(stream);
    await store.manager.streams.update(stream, { ...info.config, description: 'logline event log (layout 99)' });
    await store.close();
    await expect(openNatsStore({ url })).rejects.toBeInstanceOf(SchemaTooNewError);
  });
});
