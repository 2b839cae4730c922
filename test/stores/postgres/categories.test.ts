/**
 * Category and type reads on PostgreSQL go through their indexes (docs/store.md, categories), and
 * a schema migrated before those indexes existed gains them when a store opens it. Which index a
 * read used is PostgreSQL's own count (pg_stat_user_indexes), taken after the store closed.
 */
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../../src/postgres.js';
import { SCHEMA_VERSION } from '../../../src/stores/postgres/schema.js';
import { collect } from '../../helpers/collect.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const EVENTS = 100_000;

describe.skipIf(!reachable)('PostgreSQL category and type reads', () => {
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await admin.end();
  });

  const indexScans = async (schema: string) => {
    const rows = await admin<{ name: string; scans: string }[]>`
      SELECT indexrelname AS name, idx_scan::text AS scans FROM pg_stat_user_indexes WHERE schemaname = ${schema}`;
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.scans)]));
  };

  it('upgrades a schema from before the indexes, and reads a small category and rare types of a large log through them', async () => {
    const { url, schema, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const S = `"${schema}"`;
    let store = await openPostgresStore({ url, poolSize: 2 });
    cleanups.push(() => store.close());
    // The schema as migration 4 left it (5 adds the indexes; 6 and later run again), holding a log written in one statement: 1 event in 100
    // is in category `rare`, 1 in 50 of type Rare, the rest in 1,000 `big-…` streams.
    await store.sql.unsafe(`
      DROP INDEX ${S}.events_category; DROP INDEX ${S}.events_type; DELETE FROM ${S}.migrations WHERE version >= 5;
      INSERT INTO ${S}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
      SELECT g, CASE WHEN g % 100 = 0 THEN 'rare-' || (g % 7) WHEN g % 333 = 0 THEN 'rare' ELSE 'big-' || (g % 1000) END,
             g, gen_random_uuid(), CASE WHEN g % 50 = 1 THEN 'Rare' WHEN g % 50 = 2 THEN 'Scarce' ELSE 'Common' END,
             json_build_object('g', g), '{}'::json, now(), now()
      FROM generate_series(1, ${EVENTS}) AS g;
      ANALYZE ${S}.events;`);
    await store.close();

    store = await openPostgresStore({ url, poolSize: 2 });
    const [migrated] = await store.sql<{ v: number }[]>`SELECT max(version)::int AS v FROM ${store.sql(schema)}.migrations`;
    expect(migrated?.v).toBe(SCHEMA_VERSION);
    await store.sql.unsafe(`ANALYZE ${S}.events`);
    const before = await indexScans(schema);
    expect(before).toHaveProperty('events_category');
    expect(before).toHaveProperty('events_type');

    const rare = await collect(store.readAll({ category: 'rare' }));
    expect(rare).toHaveLength(EVENTS / 100);
    expect(rare.every((e, i) => e.streamId.startsWith('rare-') && (i === 0 || e.position > (rare[i - 1]?.position ?? 0n)))).toBe(true);
    const rareType = await collect(store.readAll({ types: ['Rare'] }));
    expect(rareType.map((e) => Number(e.position))).toEqual(Array.from({ length: EVENTS / 50 }, (_, i) => i * 50 + 1));
    const twoTypes = await collect(store.readAll({ types: ['Scarce', 'Rare'], limit: 1500 }));
    expect(twoTypes.map((e) => Number(e.position))).toEqual(Array.from({ length: 1500 }, (_, i) => Math.floor(i / 2) * 50 + 1 + (i % 2)));
    await store.close();

    // Each closed session reports its counts, shortly after. At least one scan per page: 1 page
    // for the category, 5 for Rare (4 full, then the empty one that ends the read), 3 for the two
    // types (one scan of each type per page).
    const used = (counts: Record<string, number>) => ({
      category: (counts.events_category ?? 0) - (before.events_category ?? 0),
      type: (counts.events_type ?? 0) - (before.events_type ?? 0),
    });
    const deadline = Date.now() + 10_000;
    let scans = used(await indexScans(schema));
    while (Date.now() < deadline && !(scans.category >= 1 && scans.type >= 5 + 3 * 2)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      scans = used(await indexScans(schema));
    }
    expect(scans.category).toBeGreaterThanOrEqual(1);
    expect(scans.type).toBeGreaterThanOrEqual(5 + 3 * 2);
  });
});
