/**
 * PostgreSQL stats() (called by /metrics and /v1/stats on every request) stays exact as events
 * are appended, by this store and by another process on the same schema, without counting the
 * whole events table on each call: once counted, a call reads only the events since.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { event } from '../../helpers/collect.js';
import { freshSchemaUrl, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const EVENTS = 200_000;
const PER_STREAM = 10;

/** Fills the log directly (the append path is not under test): streams of PER_STREAM events. */
async function fill(store: PostgresEventStore, events: number): Promise<void> {
  const S = store.sql(store.schema);
  await store.sql`
    INSERT INTO ${S}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
    SELECT i, 'stream-' || ((i - 1) / ${PER_STREAM}), ((i - 1) % ${PER_STREAM}) + 1, gen_random_uuid(), 'Filled', '{}', '{}', now(), now()
    FROM generate_series(1, ${events}::int) AS i`;
  await store.sql`
    INSERT INTO ${S}.streams (stream_id, version, last_position, last_recorded_at)
    SELECT stream_id, max(stream_version), max(position), now() FROM ${S}.events GROUP BY stream_id`;
  await store.sql`ANALYZE ${S}.events`;
}

/** The fastest of `runs` timings of `work`, in ms: the least disturbed by other load. */
async function fastest(runs: number, work: () => Promise<unknown>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await work();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

describe.skipIf(!reachable)('postgres stats()', () => {
  it('stays exact as this store and another process append', async () => {
    const { url, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const store = await openPostgresStore({ url });
    cleanups.push(() => store.close());
    const other = await openPostgresStore({ url });
    cleanups.push(() => other.close());

    expect(await store.stats()).toEqual({ events: 0, streams: 0, headPosition: 0n });
    await store.append('a', [event('A'), event('B')]);
    expect(await store.stats()).toEqual({ events: 2, streams: 1, headPosition: 2n });
    await other.append('b', [event('A')]);
    await other.append('a', [event('C')]);
    expect(await store.stats()).toEqual({ events: 4, streams: 2, headPosition: 4n });
    // Concurrent calls while appends go on: each sees at least what was appended before it.
    const results = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const { position } = await (i % 2 ? other : store).append(`c-${i}`, [event('A'), event('B')]);
        return { position, stats: await store.stats() };
      }),
    );
    for (const { position, stats } of results) expect(stats.headPosition).toBeGreaterThanOrEqual(position);
    expect(await store.stats()).toEqual({ events: 14, streams: 7, headPosition: 14n });
    expect(await other.stats()).toEqual({ events: 14, streams: 7, headPosition: 14n });
  });

  it(`${EVENTS.toLocaleString('en-US')} events: exact, and a call after the first does not count them all again`, async () => {
    const { url, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const store = await openPostgresStore({ url });
    cleanups.push(() => store.close());
    await fill(store, EVENTS);
    const S = store.sql(store.schema);

    expect(await store.stats()).toEqual({ events: EVENTS, streams: EVENTS / PER_STREAM, headPosition: BigInt(EVENTS) });
    await store.append('stream-0', [event('More')]);
    await store.append('fresh-1', [event('More')]);
    expect(await store.stats()).toEqual({ events: EVENTS + 2, streams: EVENTS / PER_STREAM + 1, headPosition: BigInt(EVENTS + 2) });

    // What one count of the table costs here, now, against what a stats() call costs.
    const fullCount = await fastest(3, () => store.sql`SELECT count(*) FROM ${S}.events`);
    const stats = await fastest(3, () => store.stats());
    expect(stats).toBeLessThan(fullCount / 3);
  }, 60_000);
});
