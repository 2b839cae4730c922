/**
 * npm run bench -- category [--quick] [--large]
 *
 * Category and event-type reads from $all (docs/store.md, categories) on SQLite and PostgreSQL:
 * reading a 100k-event category (streams `user-…`, one event in N of the log, evenly spread) in
 * logs of 100k, 1M (and 10M with --large) events, side by side with a full readAll of the same
 * number of events, a type read, and the unindexed streamPrefix read of the same streams. Logs are
 * written with set-based SQL (appending 1M events through the store would take minutes), with
 * the store's own schema and indexes. Then the price of the two indexes on appends: the same
 * appends into a store with and without them, interleaved.
 *
 *   LOGLINE_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres (the server; the database part is replaced)
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import type { EventStore, ReadAllOptions } from '../src/index.js';
import { openPostgresStore } from '../src/postgres.js';
import { openSqliteStore } from '../src/sqlite.js';
import { benchEvent, benchPayload, countEvents, flags, interleave, measureRead, printScenario, type Result } from './harness.js';

const DIR = join(process.cwd(), '.bench-data', 'category');
const SERVER_URL = process.env.LOGLINE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
// A database of its own: other suites drop and recreate theirs.
const DB = 'logline_bench_category';
const dbUrl = (schema?: string) => {
  const url = new URL(SERVER_URL);
  url.pathname = `/${DB}`;
  if (schema) url.searchParams.set('schema', schema);
  return url.toString();
};

const CATEGORY = flags.quick ? 10_000 : 100_000;
const SIZES = [CATEGORY, CATEGORY * 10, ...(flags.large ? [CATEGORY * 100] : [])];
const count = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

/**
 * Row g of a log of `size` events: every (size / CATEGORY)-th event is `UserSeen` in one of 1,000
 * `user-…` streams, the rest `OrderPlaced` in 10,000 `order-…` streams. Versions are contiguous
 * per user stream; order streams take g as their version (unique, which is all $all reads need).
 */
const rowSql = (size: number, g: string) => {
  const every = size / CATEGORY;
  return {
    stream: `CASE WHEN ${g} % ${every} = 0 THEN 'user-' || ((${g} / ${every}) % 1000) ELSE 'order-' || (${g} % 10000) END`,
    version: `CASE WHEN ${g} % ${every} = 0 THEN (${g} / ${every} - 1) / 1000 + 1 ELSE ${g} END`,
    type: `CASE WHEN ${g} % ${every} = 0 THEN 'UserSeen' ELSE 'OrderPlaced' END`,
  };
};

async function fillSqlite(path: string, size: number): Promise<EventStore> {
  const store = await openSqliteStore({ path, synchronous: 'normal' });
  const { stream, version, type } = rowSql(size, 'g');
  const payload = JSON.stringify(benchPayload(1)).replaceAll("'", "''");
  const chunk = 1_000_000;
  for (let from = 0; from < size; from += chunk) {
    store.database.exec(`WITH RECURSIVE s(g) AS (SELECT ${from + 1} UNION ALL SELECT g + 1 FROM s WHERE g < ${Math.min(size, from + chunk)})
      INSERT INTO events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
      SELECT g, ${stream}, ${version}, lower(hex(randomblob(16))), ${type}, '${payload}', '{"correlationId":"c"}',
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM s`);
  }
  store.database.exec('ANALYZE');
  // Into the database file: reads through a WAL of a million fresh rows measure the WAL.
  store.database.pragma('wal_checkpoint(TRUNCATE)');
  return store;
}

async function fillPostgres(admin: postgres.Sql, schema: string, size: number): Promise<EventStore> {
  const store = await openPostgresStore({ url: dbUrl(schema), poolSize: 2 });
  const { stream, version, type } = rowSql(size, 'g');
  const chunk = 1_000_000;
  for (let from = 0; from < size; from += chunk) {
    await admin.unsafe(
      `INSERT INTO "${schema}".events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
      SELECT g, ${stream}, ${version}, gen_random_uuid(), ${type}, $1::text::json, '{"correlationId":"c"}'::json, now(), now()
      FROM generate_series(${from + 1}::bigint, ${Math.min(size, from + chunk)}::bigint) AS g`,
      [JSON.stringify(benchPayload(1))],
    );
  }
  await admin.unsafe(`INSERT INTO "${schema}".streams (stream_id, version, last_position, last_recorded_at)
    SELECT stream_id, max(stream_version), max(position), now() FROM "${schema}".events GROUP BY stream_id`);
  await admin.unsafe(`VACUUM ANALYZE "${schema}".events`);
  return store;
}

const reading = (store: EventStore, options: ReadAllOptions) => () => countEvents(store.readAll(options));

/** Three rounds of every read, alternating (A B C A B C …) so load from others hits all alike; the best round counts. */
async function readsOver(store: EventStore, size: number): Promise<Result[]> {
  const reads: Array<[string, ReadAllOptions]> = [
    [`readAll, first ${count(CATEGORY)} of ${count(size)}`, { limit: CATEGORY }],
    [`category user (${count(CATEGORY)}) of ${count(size)}`, { category: 'user' }],
    [`types [UserSeen] (${count(CATEGORY)}) of ${count(size)}`, { types: ['UserSeen'] }],
  ];
  // The unindexed way walks the whole log: skipped where that takes minutes.
  if (size <= CATEGORY * 10) reads.push([`streamPrefix user- (no index) of ${count(size)}`, { streamPrefix: 'user-' }]);
  const best = new Map<string, Result>();
  for (let round = 0; round < 3; round++) {
    for (const [label, options] of reads) {
      const result = await measureRead(label, reading(store, options));
      if (result.events !== CATEGORY) throw new Error(`${label}: read ${result.events} events, expected ${CATEGORY}`);
      const seen = best.get(label);
      if (!seen || result.eventsPerSec > seen.eventsPerSec) best.set(label, result);
    }
  }
  return [...best.values()];
}

async function readScenario(backend: string, open: (size: number) => Promise<EventStore>): Promise<void> {
  const results: Result[] = [];
  for (const size of SIZES) {
    const filling = performance.now();
    const store = await open(size);
    console.log(`${backend}: ${count(size)}-event log written in ${((performance.now() - filling) / 1000).toFixed(1)} s`);
    results.push(...(await readsOver(store, size)));
    await store.close();
  }
  printScenario(
    `${backend}: read a ${count(CATEGORY)}-event category or type from logs of ${SIZES.map(count).join(', ')} events (best of 3 alternating rounds)`,
    results,
    results[0]?.label,
  );
}

/** The same 100-event appends into a store with the category and type indexes and one without. */
async function appendCostScenario(
  backend: string,
  open: (name: string) => Promise<EventStore>,
  dropIndexes: (store: EventStore) => Promise<void>,
) {
  const withIndexes = await open('with');
  const without = await open('without');
  await dropIndexes(without);
  const appends = flags.quick ? 100 : 400;
  const load = (label: string, store: EventStore) => ({
    label,
    operations: appends,
    eventsPerOperation: 100,
    concurrency: 4,
    operation: (i: number) =>
      store.append(
        `${i % 2 ? 'user' : 'order'}-${i % 50}`,
        Array.from({ length: 100 }, (_, k) => benchEvent(i * 100 + k)),
      ),
  });
  const results = await interleave([load('without the two indexes', without), load('with category + type indexes', withIndexes)]);
  printScenario(`${backend}: 100 events per append, 4 concurrent writers, interleaved in 5 rounds`, results, results[0]?.label);
  await withIndexes.close();
  await without.close();
}

export async function run(): Promise<void> {
  console.log('\nShared, loaded 2-core machine: compare rows within a table, not across runs.');
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  try {
    await readScenario('SQLite', (size) => fillSqlite(join(DIR, `log-${size}.db`), size));
    await appendCostScenario(
      'SQLite',
      (name) => openSqliteStore({ path: join(DIR, `append-${name}.db`) }),
      async (store) => {
        (store as Awaited<ReturnType<typeof openSqliteStore>>).database.exec('DROP INDEX events_category; DROP INDEX events_type');
      },
    );
  } finally {
    rmSync(DIR, { recursive: true, force: true });
  }

  const server = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await server`DROP DATABASE IF EXISTS ${server(DB)} WITH (FORCE)`;
  await server`CREATE DATABASE ${server(DB)}`;
  await server.end();
  const admin = postgres(dbUrl(), { max: 1, onnotice: () => {} });
  try {
    await readScenario('PostgreSQL', (size) => fillPostgres(admin, `log_${size}`, size));
    await appendCostScenario(
      'PostgreSQL',
      (name) => openPostgresStore({ url: dbUrl(`append_${name}`), poolSize: 4 }),
      async () => {
        await admin.unsafe('DROP INDEX append_without.events_category; DROP INDEX append_without.events_type');
      },
    );
  } finally {
    await admin.end();
    const cleanup = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
    await cleanup`DROP DATABASE IF EXISTS ${cleanup(DB)} WITH (FORCE)`;
    await cleanup.end();
  }
}
