/** PostgreSQL-specific behaviour beyond the contract: URL options, migrations, inline hooks, close. */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidStoreUrlError, openStore, SchemaTooNewError, StoreClosedError, SubjectForgottenError } from '../../../src/index.js';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { channelName, SCHEMA_VERSION } from '../../../src/stores/postgres/schema.js';
import { collect, event } from '../../helpers/collect.js';
import { signedUp } from '../../helpers/personal-data.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function fresh(extra: Partial<Parameters<typeof openPostgresStore>[0]> = {}) {
  const schema = await freshSchemaUrl();
  cleanups.push(schema.drop);
  const store = await openPostgresStore({ url: schema.url, poolSize: 3, ...extra });
  cleanups.push(() => store.close());
  return { store, ...schema };
}

describe.skipIf(!reachable)('postgres store', () => {
  it('takes schema and poolSize from the URL, through openStore, and exposes sql and schema', async () => {
    const { url, schema, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const store = (await openStore(`${url}&poolSize=2`)) as PostgresEventStore;
    cleanups.push(() => store.close());
    expect(store.backend).toBe('postgres');
    expect(store.schema).toBe(schema);
    await store.append('a-1', [event('A')]);
    const [row] = await store.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ${store.sql(schema)}.events`;
    expect(row?.n).toBe(1);
  });

  it('rejects bad schema names and URL options with a typed error', async () => {
    await expect(openStore(`${PG_URL}?schema=Bad-Name`)).rejects.toBeInstanceOf(InvalidStoreUrlError);
    await expect(openStore(`${PG_URL}?schema=x;drop`)).rejects.toBeInstanceOf(InvalidStoreUrlError);
    await expect(openStore(`${PG_URL}?poolSize=0`)).rejects.toBeInstanceOf(InvalidStoreUrlError);
  });

  it('migrates a new schema once when many open it at the same time, and refuses a newer schema', async () => {
    const { url, schema, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const stores = await Promise.all(Array.from({ length: 6 }, () => openPostgresStore({ url, poolSize: 1 })));
    await Promise.all(stores.map((s, i) => s.append(`s-${i}`, [event('A')])));
    const sql = stores[0]?.sql as PostgresEventStore['sql'];
    const migrations = await sql<{ version: number }[]>`SELECT version FROM ${sql(schema)}.migrations ORDER BY version`;
    expect(migrations.map((m) => m.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect((await stores[0]?.stats())?.events).toBe(6);
    await sql`INSERT INTO ${sql(schema)}.migrations (version) VALUES (99)`;
    await Promise.all(stores.map((s) => s.close()));
    await expect(openPostgresStore({ url })).rejects.toBeInstanceOf(SchemaTooNewError);
  });

  it('keeps tenants apart: one schema per store', async () => {
    const a = await fresh();
    const b = await fresh();
    await a.store.append('same-id', [event('A')]);
    expect(await b.store.streamVersion('same-id')).toBe(0);
    expect(await collect(b.store.readAll())).toEqual([]);
  });

  it('runs inline hooks in the append transaction; a failing hook fails only its own append', async () => {
    const { store } = await fresh();
    await store.sql`CREATE TABLE ${store.sql(store.schema)}.counts (stream_id text PRIMARY KEY, n int NOT NULL, last_position bigint)`;
    const seen: Array<[string, number, bigint]> = [];
    const remove = store.addInlineHook(async (tx, events) => {
      for (const e of events) seen.push([e.streamId, e.streamVersion, e.position]);
      if (events.some((e) => e.streamId === 'poison')) throw new Error('hook refused');
      for (const e of events) {
        await tx`INSERT INTO ${tx(store.schema)}.counts VALUES (${e.streamId}, 1, ${e.position.toString()})
                 ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1, last_position = excluded.last_position`;
      }
    });
    // Concurrent appends share one commit; the poisoned one must fail alone.
    const results = await Promise.allSettled([
      store.append('ok-1', [event('A'), event('B')]),
      store.append('poison', [event('A')]),
      store.append('ok-2', [event('A')]),
      store.append('ok-1', [event('C')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('hook refused');
    expect(await store.streamVersion('poison')).toBe(0);
    const counts = await store.sql<{ stream_id: string; n: number; last_position: string }[]>`
      SELECT stream_id, n, last_position::text FROM ${store.sql(store.schema)}.counts ORDER BY stream_id`;
    expect(counts.map((c) => [c.stream_id, c.n])).toEqual([
      ['ok-1', 3],
      ['ok-2', 1],
    ]);
    // What the hooks saw is what was stored (versions and positions), in call order.
    const stored = await collect(store.readAll());
    expect(stored.map((e) => [e.streamId, e.streamVersion, e.position])).toEqual([
      ['ok-1', 1, 1n],
      ['ok-1', 2, 2n],
      ['ok-2', 1, 3n],
      ['ok-1', 3, 4n],
    ]);
    for (const e of stored) expect(seen).toContainEqual([e.streamId, e.streamVersion, e.position]);
    expect(counts.find((c) => c.stream_id === 'ok-1')?.last_position).toBe('4');
    remove();
    await store.append('poison', [event('A')]);
    expect(await store.streamVersion('poison')).toBe(1);
  });

  it('runs inline hooks once over all the appends of a coalesced commit', async () => {
    const { store } = await fresh();
    const calls: string[][] = [];
    const remove = store.addInlineHook(async (_tx, events) => {
      calls.push(events.map((e) => e.streamId));
    });
    const appends = Array.from({ length: 24 }, (_, i) => store.append(`batched-${i}`, [event('A')]));
    const results = await Promise.all(appends);
    remove();
    // Every append's event went through a hook exactly once, and far fewer calls than appends
    // (each call a round trip or more inside the commit).
    expect(calls.flat().sort()).toEqual(results.map((_, i) => `batched-${i}`).sort());
    expect(calls.length).toBeLessThan(12);
    expect(calls.some((streams) => streams.length > 1)).toBe(true);
  });

  it('close() finishes the appends already accepted, then refuses new ones', async () => {
    const { store, url } = await fresh();
    const pending = Array.from({ length: 50 }, (_, i) => store.append(`c-${i % 5}`, [event('E', { i })]));
    await store.close();
    const results = await Promise.allSettled(pending);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    await expect(store.append('c-0', [event('E')])).rejects.toBeInstanceOf(StoreClosedError);
    const reopened = await openPostgresStore({ url });
    cleanups.push(() => reopened.close());
    expect((await reopened.stats()).events).toBe(50);
  });

  it('wakes a live subscriber in another process-like store through NOTIFY', async () => {
    const { store, url } = await fresh({ pollMs: 60_000 });
    const other = await openPostgresStore({ url, pollMs: 60_000 });
    cleanups.push(() => other.close());
    const iterator = store.subscribe({ from: 'end' })[Symbol.asyncIterator]();
    const first = iterator.next();
    await new Promise((r) => setTimeout(r, 200)); // let the subscriber reach its wait
    await other.append('x', [event('FromElsewhere')]);
    // With a 60 s poll, only the NOTIFY can deliver this within the test timeout.
    expect((await first).value?.type).toBe('FromElsewhere');
    await iterator.return?.();
  });

  it('reads started together come back as each alone: many streams, one stream twice, long, hidden, sealed and empty ones', async () => {
    const { store } = await fresh();
    // 2,500 events: the forward pages after the first also go out together with the others' reads.
    for (let k = 0; k < 5; k++)
      await store.append(
        'long-1',
        Array.from({ length: 500 }, (_, i) => event('L', { n: k * 500 + i })),
      );
    for (let i = 0; i < 40; i++)
      await store.append(
        `short-${i}`,
        Array.from({ length: 1 + (i % 4) }, (_, j) => event('S', { i, j })),
      );
    await store.append(
      'trimmed-1',
      Array.from({ length: 6 }, (_, i) => event('T', { i })),
    );
    await store.setStreamMetadata('trimmed-1', { truncateBefore: 4 });
    const subject = randomUUID();
    await store.append(`person-${subject}`, [signedUp(subject, 'homer@example.test')]);
    const reads: Array<[string, { from?: number; limit?: number }]> = [
      ['long-1', {}],
      ['long-1', { from: 1_800, limit: 300 }],
      ...Array.from({ length: 40 }, (_, i): [string, { from?: number }] => [`short-${i}`, { from: 1 + (i % 3) }]),
      ['trimmed-1', {}],
      [`person-${subject}`, {}],
      ['missing-1', {}],
    ];
    const alone: unknown[] = [];
    for (const [stream, opts] of reads) alone.push(await collect(store.read(stream, opts)));
    const together = await Promise.all(reads.map(([stream, opts]) => collect(store.read(stream, opts))));
    expect(together).toEqual(alone);
    // What each alone read holds, so equal means right, not equally wrong.
    expect((alone[0] as unknown[]).length).toBe(2_500);
    expect((alone[1] as Array<{ streamVersion: number }>).map((e) => e.streamVersion)).toEqual(
      Array.from({ length: 300 }, (_, i) => 1_800 + i),
    );
    expect((alone[2 + 7] as Array<{ data: unknown }>).map((e) => e.data)).toEqual([
      { i: 7, j: 1 },
      { i: 7, j: 2 },
      { i: 7, j: 3 },
    ]);
    expect((alone[42] as Array<{ streamVersion: number }>).map((e) => e.streamVersion)).toEqual([4, 5, 6]);
    expect((alone[43] as Array<{ data: { email: string } }>)[0]?.data.email).toBe('homer@example.test');
    expect(alone[44]).toEqual([]);
  });

  it('appends of personal data started together each seal with their own subject: new, known and forgotten subjects', async () => {
    const { store, schema } = await fresh();
    const known = Array.from({ length: 12 }, () => randomUUID());
    for (const subject of known) await store.append(`person-${subject}`, [signedUp(subject, `${subject}@old.test`)]);
    const forgotten = known[0] as string;
    await store.forget(forgotten);
    const newcomers = Array.from({ length: 12 }, () => randomUUID());
    // Known subjects also on a second stream of theirs, which the key table has not noted yet.
    const appends = [
      ...known.map((subject) => [`person-${subject}`, subject] as const),
      ...known.slice(1, 6).map((subject) => [`other-${subject}`, subject] as const),
      ...newcomers.map((subject) => [`person-${subject}`, subject] as const),
    ];
    const results = await Promise.allSettled(
      appends.map(([stream, subject]) => store.append(stream, [signedUp(subject, `${subject}@new.test`)])),
    );
    expect(results.map((r) => r.status)).toEqual(appends.map(([, subject]) => (subject === forgotten ? 'rejected' : 'fulfilled')));
    expect((results[0] as PromiseRejectedResult).reason).toBeInstanceOf(SubjectForgottenError);
    for (const [stream, subject] of appends.filter(([, subject]) => subject !== forgotten)) {
      const read = await collect(store.read(stream));
      expect(read.at(-1)?.data).toMatchObject({ email: `${subject}@new.test` });
    }
    const noted = await store.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM ${store.sql(schema)}.subject_streams WHERE stream_id LIKE 'other-%'`;
    expect(noted[0]?.n).toBe(5);
  });

  it('stores large positions and versions as exact integers', async () => {
    const { store } = await fresh();
    const sql = store.sql;
    // Jump the log beyond 2^53 to prove positions are bigint end to end.
    await sql`INSERT INTO ${sql(store.schema)}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
              VALUES (9007199254740993, 'seed', 1, gen_random_uuid(), 'Seed', '{}', '{}', now(), now())`;
    await sql`INSERT INTO ${sql(store.schema)}.streams VALUES ('seed', 1, 9007199254740993, now())`;
    const { position } = await store.append('big', [event('A')]);
    expect(position).toBe(9007199254740994n);
    expect((await collect(store.readAll({ from: 9007199254740993n }))).map((e) => e.position)).toEqual([9007199254740994n]);
    expect(await store.headPosition()).toBe(9007199254740994n);
  });

  it('names the head each commit left in its NOTIFY, so a store wakes its readers once per own commit', async () => {
    const { store, schema } = await fresh();
    const payloads: string[] = [];
    const listener = await store.sql.listen(channelName(schema), (payload) => payloads.push(payload));
    await store.append('n-1', [event('A'), event('B'), event('C')]);
    await store.append('n-2', [event('D')]);
    await expect.poll(() => payloads).toEqual(['3', '4']);
    await listener.unlisten();
  });
});
