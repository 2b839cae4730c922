/**
 * PostgreSQL append path beyond the contract: a hot stream coalesces into one commit (issue 19),
 * and recordedAt is taken after the ordering lock (issue 10 item 7).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../src/index.js';
import { openPostgresStore } from '../../../src/postgres.js';
import { collect, event, sleep } from '../../helpers/collect.js';
import { freshSchemaUrl, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function fresh() {
  const schema = await freshSchemaUrl();
  cleanups.push(schema.drop);
  const store = await openPostgresStore({ url: schema.url, poolSize: 2 });
  cleanups.push(() => store.close());
  return { store, ...schema };
}

describe.skipIf(!reachable)('postgres append_batch', () => {
  it('commits many concurrent appends to one stream in one transaction, versions in call order', async () => {
    const { store, schema } = await fresh();
    await store.append('hot', [event('Opened')]);
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => store.append('hot', [event('Tick', { i })], { expectedVersion: i % 2 ? 'any' : i + 1 })),
    );
    expect(results.map((r) => r.streamVersion)).toEqual(Array.from({ length: 64 }, (_, i) => i + 2));
    // xmin is the inserting transaction: the 64 appends went in with the first one's commit.
    const [row] = await store.sql<{ commits: number }[]>`
      SELECT count(DISTINCT xmin::text)::int AS commits FROM ${store.sql(schema)}.events WHERE stream_version > 1`;
    expect(row?.commits).toBe(1);
  });

  it('records the time after the ordering lock, not when the transaction began', async () => {
    const { store, schema } = await fresh();
    // An append transaction that began before another append committed (as one does when it runs
    // savepoints and inline hooks before its turn at the lock) appends after that one.
    const early = await store.sql.reserve();
    try {
      await early`BEGIN`;
      await early`SELECT now()`;
      await sleep(30);
      await store.append('s', [event('First')]);
      const id = randomUUID();
      await early`SELECT * FROM ${early(schema)}.append_batch('{s}', '{-1}', '{1}', ${`{${id}}`}, '{Second}', '{NULL}', '[{}]', '[{}]')`;
      await early`COMMIT`;
    } finally {
      early.release();
    }
    const [first, second] = (await collect(store.read('s'))) as [RecordedEvent, RecordedEvent];
    expect(second.type).toBe('Second');
    expect(second.position).toBe(first.position + 1n);
    expect(Date.parse(second.recordedAt)).toBeGreaterThanOrEqual(Date.parse(first.recordedAt));
  });

  it('keeps reading through indexes when the tables grew after its plans were cached (statistics not yet updated)', async () => {
    const { store, schema } = await fresh();
    const S = store.sql(schema);
    await store.sql`ALTER TABLE ${S}.events SET (autovacuum_enabled = false)`;
    await store.sql`ALTER TABLE ${S}.streams SET (autovacuum_enabled = false)`;
    // Plans made on near-empty tables, where a sequential scan is the cheapest: batches of 30
    // appends, a size for which PostgreSQL prefers a cached generic plan after five calls.
    const round = (name: string, i: number) =>
      Promise.all(Array.from({ length: 30 }, (_, k) => store.append(`${name}-${i}-${k}`, [event('A')])));
    for (let i = 0; i < 12; i++) await round('warm', i);
    // A burst of rows with no ANALYZE after it (autovacuum would come later).
    await store.sql`INSERT INTO ${S}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
      SELECT 1000 + g, 'bulk-' || g, 1, gen_random_uuid(), 'T', '{}'::json, '{}'::json, now(), now() FROM generate_series(1, 50000) g`;
    await store.sql`INSERT INTO ${S}.streams SELECT 'bulk-' || g, 1, 1000 + g, now() FROM generate_series(1, 50000) g`;
    const scans = async () => {
      const rows = await store.sql<{ relname: string; seqRows: string; idx: string }[]>`
        SELECT relname, seq_tup_read::text AS "seqRows", coalesce(idx_scan, 0)::text AS idx FROM pg_stat_user_tables
        WHERE schemaname = ${schema} AND relname IN ('events', 'streams') ORDER BY relname`;
      return Object.fromEntries(rows.map((r) => [r.relname, { seqRows: Number(r.seqRows), idx: Number(r.idx) }]));
    };
    // A backend reports its counters when a transaction ends, but at most once a second; what it
    // holds back then waits for its idle timer (10 s). So each snapshot follows an append made
    // over a second after the last: it reports everything the writer's connection did before it.
    const reported = async () => {
      await sleep(1_100);
      await store.append('stats-flush', [event('F')]);
      return scans();
    };
    const before = await reported();
    for (let i = 0; i < 20; i++) await Promise.all([round('late', i), store.append('late-shared', [event('B')])]);
    const after = await reported();
    // The late appends are in it: each call reads the head through the primary key at least.
    expect(after.events?.idx ?? 0).toBeGreaterThanOrEqual((before.events?.idx ?? 0) + 20);
    // Rows read by sequential scans, not their count: a connection may report the scans of the
    // warm-up (tiny tables) or of CREATE INDEX at open only after `before` (its idle timer, 10 s).
    // One sequential scan of a grown table reads its 50,000 bulk rows.
    expect((after.events?.seqRows ?? 0) - (before.events?.seqRows ?? 0)).toBeLessThan(50_000);
    expect((after.streams?.seqRows ?? 0) - (before.streams?.seqRows ?? 0)).toBeLessThan(50_000);
    expect(await store.streamVersion('late-shared')).toBe(20);
  });
});
