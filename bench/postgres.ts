/**
 * PostgreSQL suite: Logline's PostgreSQL store side by side, in one run on one database with the
 * same payloads, with raw postgres.js doing the equivalent inserts, Emmett (emmett-postgresql) and
 * Castore (event-storage-adapter-postgres). Everything runs in a scratch database
 * `logline_bench` that is dropped and re-created at the start.
 *
 *   npm run bench -- postgres [--quick] [--large] [--retention | --planning (that scenario alone)]
 *   LOGLINE_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres (the server; the database part is replaced)
 */
import { randomUUID } from 'node:crypto';
import { PostgresEventStorageAdapter } from '@castore/event-storage-adapter-postgres';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import postgres from 'postgres';
import type { NewEvent } from '../src/index.js';
import { openPostgresStore, type PostgresEventStore } from '../src/postgres.js';
import {
  type AppendLoad,
  benchEvent,
  benchPayload,
  countEvents,
  flags,
  interleave,
  measureLiveLatency,
  measureRead,
  printScenario,
  type Result,
} from './harness.js';

const SERVER_URL = process.env.LOGLINE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = 'logline_bench';
const dbUrl = (() => {
  const url = new URL(SERVER_URL);
  url.pathname = `/${DB}`;
  return url.toString();
})();
const RAW = 'raw postgres.js';
let tables = 0;

async function recreateDatabase(): Promise<void> {
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await admin`DROP DATABASE IF EXISTS ${admin(DB)} WITH (FORCE)`;
  await admin`CREATE DATABASE ${admin(DB)}`;
  await admin.end();
}

/**
 * Raw postgres.js: what an application would write by hand. The same columns and unique indexes
 * as Logline's events table, a bigserial position, versions kept in a Map, autocommit INSERTs
 * (one multi-row INSERT per append), no validation, no concurrency check, no ordering guarantee.
 */
async function rawStore(sql: postgres.Sql, table: string) {
  await sql`CREATE TABLE ${sql(table)} (
    position bigserial PRIMARY KEY, stream_id text COLLATE "C" NOT NULL, stream_version int NOT NULL, id uuid NOT NULL,
    type text NOT NULL, data json NOT NULL, metadata json NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now(),
    recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, stream_version), UNIQUE (id))`;
  const versions = new Map<string, number>();
  return {
    append: async (stream: string, events: NewEvent[]) => {
      let version = versions.get(stream) ?? 0;
      const rows = events.map((e) => ({
        stream_id: stream,
        stream_version: ++version,
        id: randomUUID(),
        type: e.type,
        data: JSON.stringify(e.data),
        metadata: JSON.stringify(e.metadata ?? {}),
      }));
      versions.set(stream, version);
      await sql`INSERT INTO ${sql(table)} ${sql(rows)}`;
    },
  };
}

/** Emmett's PostgreSQL event store (node-postgres underneath), its own tables in `public`. */
function emmettStore() {
  const store = getPostgreSQLEventStore(dbUrl);
  const versions = new Map<string, bigint>();
  return {
    append: async (stream: string, events: NewEvent[]) => {
      const result = await store.appendToStream(
        stream,
        events.map((e) => ({ type: e.type, data: e.data as Record<string, unknown>, metadata: e.metadata as Record<string, unknown> })),
        { expectedStreamVersion: versions.get(stream) ?? 0n },
      );
      versions.set(stream, result.nextExpectedStreamVersion);
    },
    readStream: (stream: string) => store.readStream(stream),
    close: () => store.close(),
  };
}

/** Castore's Postgres adapter (postgres.js underneath): one event per pushEvent, aggregate ids are UUIDs. */
async function castoreStore() {
  const tableName = 'castore_events';
  await PostgresEventStorageAdapter.createEventTable({ connectionString: dbUrl, tableName });
  const adapter = new PostgresEventStorageAdapter({ connectionString: dbUrl, tableName });
  const ids = new Map<string, string>();
  const versions = new Map<string, number>();
  return {
    append: async (stream: string, event: NewEvent) => {
      let aggregateId = ids.get(stream);
      if (!aggregateId) ids.set(stream, (aggregateId = randomUUID()));
      const version = (versions.get(stream) ?? 0) + 1;
      await adapter.pushEvent(
        { aggregateId, version, type: event.type, payload: event.data, metadata: event.metadata },
        { eventStoreId: 'orders' },
      );
      versions.set(stream, version);
    },
    // The adapter has no close(); its postgres.js client is private.
    close: () => (adapter as unknown as { _sql: postgres.Sql })._sql.end({ timeout: 1 }),
  };
}

/** A Logline append as an aggregate would do it: each caller owns its streams and checks the version. */
function loglineLoad(
  store: PostgresEventStore,
  label: string,
  ops: number,
  per: number,
  concurrency: number,
  batches: NewEvent[][],
): AppendLoad {
  const versions = new Map<string, number>();
  const scenario = ++tables;
  return {
    label,
    operations: ops,
    eventsPerOperation: per,
    concurrency,
    operation: async (i, worker) => {
      const stream = `ll-${scenario}-${worker}-${i % 7}`;
      const result = await store.append(stream, batches[i] as NewEvent[], { expectedVersion: versions.get(stream) ?? 'no_stream' });
      versions.set(stream, result.streamVersion);
    },
  };
}

interface Contenders {
  sql: postgres.Sql;
  logline: PostgresEventStore;
  emmett: ReturnType<typeof emmettStore>;
  castore: Awaited<ReturnType<typeof castoreStore>> | undefined;
}

async function appendScenario(c: Contenders, title: string, ops: number, per: number, concurrency: number): Promise<Result[]> {
  const batches = Array.from({ length: ops }, (_, a) => Array.from({ length: per }, (_, i) => benchEvent(a * per + i)));
  const raw = await rawStore(c.sql, `raw_${per}_${concurrency}_${++tables}`);
  const loads: AppendLoad[] = [
    {
      label: RAW,
      operations: ops,
      eventsPerOperation: per,
      concurrency,
      operation: (i, worker) => raw.append(`raw-${worker}-${i % 7}`, batches[i] as NewEvent[]),
    },
    loglineLoad(c.logline, 'logline-pg', ops, per, concurrency, batches),
    {
      label: 'emmett',
      operations: ops,
      eventsPerOperation: per,
      concurrency,
      operation: (i, worker) => c.emmett.append(`em-${tables}-${worker}-${i % 7}`, batches[i] as NewEvent[]),
    },
  ];
  const castore = c.castore;
  if (castore && per === 1) {
    loads.push({
      label: 'castore',
      operations: ops,
      eventsPerOperation: per,
      concurrency,
      operation: (i, worker) => castore.append(`ca-${tables}-${worker}-${i % 7}`, (batches[i] as NewEvent[])[0] as NewEvent),
    });
  }
  const results = await interleave(loads);
  printScenario(title, results, RAW);
  return results;
}

/**
 * Issue 19: a hot stream must coalesce like many streams do. 16 writers, 1-event appends without
 * expected versions (a shared log, an audit stream), all on one stream vs spread over 1,000.
 */
async function hotStreamScenario(store: PostgresEventStore): Promise<void> {
  const ops = flags.quick ? 4000 : 16000;
  const batches = Array.from({ length: ops }, (_, i) => [benchEvent(i)]);
  const scenario = ++tables;
  const load = (label: string, stream: (i: number) => string): AppendLoad => ({
    label,
    operations: ops,
    eventsPerOperation: 1,
    concurrency: 16,
    operation: (i) => store.append(stream(i), batches[i] as NewEvent[]),
  });
  const spread = 'logline-pg, 16 writers over 1,000 streams';
  const results = await interleave([
    load(spread, (i) => `spread-${scenario}-${i % 1000}`),
    load('logline-pg, 16 writers on one hot stream', () => `hot-${scenario}`),
  ]);
  printScenario('1 event per append, no expected version, 16 writers: one hot stream vs 1,000 streams', results, spread);
}

/**
 * append_batch with cached plans (migration 6, sequential scans ruled out) against the same
 * function planning every statement on every call (migration 2's way), side by side.
 */
async function planningScenario(): Promise<void> {
  const cached = await openPostgresStore({ url: `${dbUrl}?schema=plan_cached`, poolSize: 4 });
  const perCall = await openPostgresStore({ url: `${dbUrl}?schema=plan_per_call`, poolSize: 4 });
  const fn = 'plan_per_call.append_batch(text, text, text, text, text, text, text, text)';
  await perCall.sql.unsafe(`ALTER FUNCTION ${fn} RESET enable_seqscan; ALTER FUNCTION ${fn} SET plan_cache_mode = force_custom_plan`);
  const ops = flags.quick ? 3000 : 16000;
  for (const concurrency of [1, 16]) {
    const load = (label: string, store: PostgresEventStore): AppendLoad => ({
      label,
      operations: concurrency === 1 ? ops / 4 : ops,
      eventsPerOperation: 1,
      concurrency,
      operation: (i) => store.append(`order-${concurrency}-${i % 1000}`, [benchEvent(i)]),
    });
    const writers = `${concurrency} writer${concurrency > 1 ? 's' : ''}`;
    const perCallLabel = `logline-pg, planned per call (migration 2), ${writers}`;
    const results = await interleave([load(perCallLabel, perCall), load(`logline-pg, cached plans (migration 6), ${writers}`, cached)]);
    printScenario(`append_batch planning: 1 event per append, ${writers}`, results, perCallLabel);
  }
  await Promise.all([cached.close(), perCall.close()]);
}

const COLUMNS = 'position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at';

/**
 * Sustained queries on a pool whose connections were all opened by a burst: the raw postgres.js
 * pool against the store's (src/stores/postgres/pool.ts), queries/s in each round, the contenders
 * taking turns round by round. postgres.js's own pool gets slower with every query it has run
 * (docs/postgres.md, *Known driver issue*); the ratio of the last round to the first shows it.
 */
async function poolScenario(): Promise<void> {
  const raw = postgres(dbUrl, { max: 10, onnotice: () => {} });
  const store = await openPostgresStore({ url: `${dbUrl}?schema=pool`, poolSize: 10 });
  await store.append('pool-1', [benchEvent(0)]);
  const rounds = flags.quick ? 4 : 8;
  const perRound = flags.quick ? 10_000 : 20_000;
  const contenders: Array<[string, () => Promise<unknown>]> = [
    ['raw postgres.js pool (max 10), SELECT 1', () => raw`SELECT 1`],
    ['logline-pg store.sql (poolSize 10), SELECT 1', () => store.sql`SELECT 1`],
    ['logline-pg read() of a one-event stream', () => countEvents(store.read('pool-1'))],
  ];
  const lines: string[] = [];
  for (const concurrency of [1, 16]) {
    const rates = contenders.map(() => [] as number[]);
    for (const [, query] of contenders) await Promise.all(Array.from({ length: 10 }, () => query())); // every connection open
    for (let round = 0; round < rounds; round++) {
      for (const [k, [, query]] of contenders.entries()) {
        let left = perRound;
        const started = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (left-- > 0) await query();
          }),
        );
        rates[k]?.push(perRound / ((performance.now() - started) / 1000));
      }
    }
    for (const [k, [label]] of contenders.entries()) {
      const r = rates[k] ?? [];
      const ratio = (r[r.length - 1] ?? 0) / (r[0] ?? 1);
      lines.push(
        `| ${label}, concurrency ${concurrency} | ${r.map((x) => Math.round(x).toLocaleString('en-US')).join(' | ')} | ${ratio.toFixed(2)} |`,
      );
    }
  }
  console.log(`\n### sustained queries on an opened pool: queries/s in each round of ${perRound.toLocaleString('en-US')}\n`);
  console.log(`| contender | ${Array.from({ length: rounds }, (_, i) => `round ${i + 1}`).join(' | ')} | last / first |`);
  console.log(`|---|${'---|'.repeat(rounds + 1)}`);
  for (const line of lines) console.log(line);
  await Promise.all([raw.end(), store.close()]);
}

async function readStreamScenario(c: Contenders): Promise<void> {
  const length = 10_000;
  const batches = Array.from({ length: length / 100 }, (_, a) => Array.from({ length: 100 }, (_, i) => benchEvent(a * 100 + i)));
  const raw = await rawStore(c.sql, 'raw_read');
  for (const batch of batches) {
    await raw.append('long', batch);
    await c.logline.append('long', batch);
    await c.emmett.append('long', batch);
  }
  const results: Result[] = [];
  for (let round = 0; round < 3; round++) {
    results.push(
      await measureRead(RAW, async () => {
        // Keyset paging by version, 1000 rows a page, json parsed by postgres.js.
        let n = 0;
        let from = 0;
        for (;;) {
          const rows = await c.sql`SELECT ${c.sql.unsafe(COLUMNS)} FROM raw_read WHERE stream_id = ${'long'} AND stream_version > ${from}
                                   ORDER BY stream_version LIMIT 1000`.values();
          n += rows.length;
          if (rows.length < 1000) return n;
          from = (rows[rows.length - 1] as unknown[])[2] as number;
        }
      }),
      await measureRead('logline-pg read()', () => countEvents(c.logline.read('long'))),
      await measureRead('emmett readStream()', async () => (await c.emmett.readStream('long')).events.length),
    );
  }
  printScenario(`read one ${length.toLocaleString('en-US')}-event stream (3 rounds each)`, best(results), RAW);
}

/** The best of the rounds per label (first round warms caches and prepared statements). */
function best(results: Result[]): Result[] {
  const byLabel = new Map<string, Result>();
  for (const r of results) {
    const seen = byLabel.get(r.label);
    if (!seen || r.eventsPerSec > seen.eventsPerSec) byLabel.set(r.label, r);
  }
  return [...byLabel.values()];
}

/** Fills a Logline schema straight in SQL (fast), `count` events over 10k streams. */
async function fill(sql: postgres.Sql, schema: string, count: number): Promise<void> {
  const chunk = 1_000_000;
  for (let from = 0; from < count; from += chunk) {
    const to = Math.min(count, from + chunk);
    await sql`INSERT INTO ${sql(schema)}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
      SELECT g, 'fill-' || (g % 10000), g / 10000 + 1, gen_random_uuid(), 'OrderPlaced',
             ${JSON.stringify(benchPayload(1))}::json, '{"correlationId":"c"}'::json, now(), now()
      FROM generate_series(${from + 1}::bigint, ${to}::bigint) AS g`;
  }
  await sql`INSERT INTO ${sql(schema)}.streams (stream_id, version, last_position, last_recorded_at)
    SELECT stream_id, max(stream_version), max(position), now() FROM ${sql(schema)}.events GROUP BY stream_id
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position`;
  await sql`VACUUM ANALYZE ${sql(schema)}.events`;
}

async function catchUpScenario(sql: postgres.Sql, store: PostgresEventStore, count: number): Promise<void> {
  const results: Result[] = [];
  for (let round = 0; round < 2; round++) {
    results.push(
      await measureRead(RAW, async () => {
        let n = 0;
        let after = '0';
        for (;;) {
          const rows = await sql`SELECT ${sql.unsafe(COLUMNS)} FROM ${sql(store.schema)}.events WHERE position > ${after}
                                 ORDER BY position LIMIT 500`.values();
          n += rows.length;
          if (rows.length < 500) return n;
          after = String((rows[rows.length - 1] as unknown[])[0]);
        }
      }),
      await measureRead('logline-pg readAll()', () => countEvents(store.readAll())),
    );
  }
  printScenario(`readAll catch-up over ${count.toLocaleString('en-US')} events (500-row pages)`, best(results), RAW);
}

/** Appends at a steady rate from one store; a subscriber on another store (woken by NOTIFY) measures latency. */
async function liveLatencyScenario(url: string): Promise<void> {
  const writer = await openPostgresStore({ url, poolSize: 4 });
  const reader = await openPostgresStore({ url, poolSize: 2 });
  const rate = 1000;
  const seconds = flags.quick ? 3 : 10;
  const result = await measureLiveLatency('logline-pg', writer, reader, rate, seconds);
  printScenario(
    `append -> live subscriber in another store (LISTEN/NOTIFY), steady ${rate.toLocaleString('en-US')} events/s for ${seconds} s`,
    [result],
  );
  await writer.close();
  await reader.close();
}

async function appendAtSizeScenario(emptyUrl: string, fullUrl: string, stored: number): Promise<void> {
  const empty = await openPostgresStore({ url: emptyUrl, poolSize: 2 });
  const full = await openPostgresStore({ url: fullUrl, poolSize: 2 });
  const ops = flags.quick ? 500 : 2000;
  const batches = Array.from({ length: ops }, (_, i) => [benchEvent(i)]);
  const results = await interleave([
    loglineLoad(empty, 'logline-pg, empty store', ops, 1, 1, batches),
    loglineLoad(full, `logline-pg, ${stored.toLocaleString('en-US')} events stored`, ops, 1, 1, batches),
  ]);
  printScenario(
    `1 event per append, 1 writer: empty vs ${stored.toLocaleString('en-US')} events stored`,
    results,
    'logline-pg, empty store',
  );
  await empty.close();
  await full.close();
}

/**
 * Design §5, measured: the two ways to a global order without skips, as raw SQL on 16 connections
 * (one-row transactions, nothing coalesced, so the strategies' own costs show):
 * - xid: every row stores pg_current_xact_id(); writers run free, readers filter on
 *   pg_snapshot_xmin (and any open transaction in the database holds every reader back);
 * - lock: one advisory lock per log taken before the position is assigned, held to commit.
 * Then Logline (lock + coalesced commits) with the 16 writers in 1 store vs spread over 4 stores
 * (separate pools, as separate processes would be: their commits contend for the lock).
 */
async function orderingScenario(sql: postgres.Sql): Promise<void> {
  await sql`CREATE TABLE ord_xid (position bigserial PRIMARY KEY, tx xid8 NOT NULL DEFAULT pg_current_xact_id(), data json NOT NULL)`;
  await sql`CREATE TABLE ord_lock (position bigserial PRIMARY KEY, data json NOT NULL)`;
  await sql`CREATE FUNCTION ord_lock_insert(d text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock(42); INSERT INTO ord_lock (data) VALUES (d::json); END $$`;
  const ops = flags.quick ? 3000 : 12000;
  const data = JSON.stringify(benchPayload(1));
  const results = await interleave([
    {
      label: 'xid8 column (writers unserialized)',
      operations: ops,
      eventsPerOperation: 1,
      concurrency: 16,
      operation: () => sql`INSERT INTO ord_xid (data) VALUES (${data}::text::json)`,
    },
    {
      label: 'advisory lock to commit',
      operations: ops,
      eventsPerOperation: 1,
      concurrency: 16,
      operation: () => sql`SELECT ord_lock_insert(${data})`,
    },
  ]);
  printScenario('ordering strategies, raw SQL: 1-row transactions on 16 connections', results, 'xid8 column (writers unserialized)');

  // What the xid filter costs readers while one unrelated transaction stays open for 1 s.
  const reader = postgres(dbUrl, { max: 1, onnotice: () => {} });
  const holder = await sql.reserve();
  await holder`BEGIN`;
  await holder`SELECT pg_current_xact_id()`;
  await sql`INSERT INTO ord_xid (data) VALUES (${data}::text::json)`;
  const t0 = performance.now();
  let visibleAfterMs = Number.NaN;
  const head = await sql<{ p: string }[]>`SELECT max(position)::text AS p FROM ord_xid`;
  const release = setTimeout(() => holder`COMMIT`.then(() => holder.release()), 1000);
  for (;;) {
    const rows = await reader`SELECT position FROM ord_xid WHERE position >= ${head[0]?.p ?? '0'}
                              AND tx < pg_snapshot_xmin(pg_current_snapshot())`;
    if (rows.length) {
      visibleAfterMs = performance.now() - t0;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  clearTimeout(release);
  await reader.end();
  console.log(
    `\nxid filter: a committed event became visible to readers after ${visibleAfterMs.toFixed(0)} ms, because one unrelated transaction stayed open for 1000 ms.`,
  );

  const one = await openPostgresStore({ url: `${dbUrl}?schema=ord_one`, poolSize: 4 });
  const four = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore({ url: `${dbUrl}?schema=ord_four`, poolSize: 2 })));
  const batches = Array.from({ length: ops }, (_, i) => [benchEvent(i)]);
  const spread = new Map<string, number>();
  const logline = await interleave([
    loglineLoad(one, 'logline-pg, 16 writers in 1 store', ops, 1, 16, batches),
    {
      label: 'logline-pg, 16 writers over 4 stores',
      operations: ops,
      eventsPerOperation: 1,
      concurrency: 16,
      operation: async (i, worker) => {
        const stream = `spread-${worker}-${i % 7}`;
        const store = four[worker % 4] as PostgresEventStore;
        const result = await store.append(stream, batches[i] as NewEvent[], { expectedVersion: spread.get(stream) ?? 'no_stream' });
        spread.set(stream, result.streamVersion);
      },
    },
  ]);
  printScenario(
    'ordering strategy as shipped (lock + coalesced commits), 1 event per append',
    logline,
    'logline-pg, 16 writers in 1 store',
  );
  await one.close();
  await Promise.all(four.map((s) => s.close()));
}

/**
 * What retention costs (docs/lifecycle.md#retention-and-deletion), one schema read three ways in
 * one run: no stream has settings; half the 10,000 streams keep only their last 25 events;
 * after the scavenge removed the rest. Then the scavenge's own rate.
 */
async function retentionScenario(sql: postgres.Sql, schema: string): Promise<void> {
  const total = flags.quick ? 100_000 : 1_000_000;
  const store = await openPostgresStore({ url: `${dbUrl}?schema=${schema}`, poolSize: 4 });
  await fill(sql, schema, total);
  const readAll = () => countEvents(store.readAll());
  const base = 'readAll(), no stream with settings';
  const results: Result[] = [];
  for (let round = 0; round < 2; round++) results.push(await measureRead(base, readAll));
  const maxCount = Math.max(1, Math.floor(total / 10_000 / 4));
  for (let i = 0; i < 10_000; i += 2) await store.setStreamMetadata(`fill-${i}`, { maxCount });
  for (let round = 0; round < 2; round++) results.push(await measureRead(`readAll(), half the streams with maxCount ${maxCount}`, readAll));
  const started = performance.now();
  const { removed } = await store.scavenge();
  const seconds = (performance.now() - started) / 1000;
  for (let round = 0; round < 2; round++) results.push(await measureRead('readAll() after the scavenge', readAll));
  printScenario(
    `retention: readAll over ${total.toLocaleString('en-US')} events in 10,000 streams, best of 2 (events/s = events returned)`,
    best(results),
    base,
  );
  printScenario('retention: scavenge (events/s = events removed)', [
    { label: `scavenge() of ${removed.toLocaleString('en-US')} events`, events: removed, seconds, eventsPerSec: removed / seconds },
  ]);
  await store.close();
}

export async function run(): Promise<void> {
  if (process.argv.includes('--retention')) {
    // Only the retention scenario: `npm run bench -- postgres --retention`. A schema of its own in
    // the bench database, which it leaves in place (another bench may be using it).
    const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
    await admin`CREATE DATABASE ${admin(DB)}`.catch(() => {}); // already there
    await admin.end();
    const sql = postgres(dbUrl, { max: 4, onnotice: () => {} });
    const schema = `retention_${process.pid}`;
    try {
      await retentionScenario(sql, schema);
    } finally {
      await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
      await sql.end();
    }
    return;
  }
  await recreateDatabase();
  if (process.argv.includes('--planning')) return planningScenario();
  if (process.argv.includes('--pool')) return poolScenario();
  const sql = postgres(dbUrl, { max: 16, onnotice: () => {} });
  const logline = await openPostgresStore({ url: `${dbUrl}?schema=bench`, poolSize: 10 });
  const emmett = emmettStore();
  let castore: Contenders['castore'];
  try {
    castore = await castoreStore();
  } catch (error) {
    console.log(`castore unavailable: ${String(error)}`);
  }
  const c: Contenders = { sql, logline, emmett, castore };
  // Warm-up: schemas, prepared statements, connection pools.
  await appendScenario(c, 'warm-up (ignore)', 200, 1, 16);

  const q = flags.quick;
  await appendScenario(c, '1 event per append, 1 writer', q ? 500 : 2000, 1, 1);
  await appendScenario(c, '1 event per append, 16 concurrent writers', q ? 3000 : 16000, 1, 16);
  await hotStreamScenario(logline);
  await planningScenario();
  await poolScenario();
  await appendScenario(c, '100 events per append, 4 concurrent writers', q ? 100 : 400, 100, 4);
  await readStreamScenario(c);
  await emmett.close();
  await castore?.close();
  await orderingScenario(sql);

  const catchUp = q ? 100_000 : 1_000_000;
  const big = await openPostgresStore({ url: `${dbUrl}?schema=big`, poolSize: 2 });
  await fill(sql, 'big', catchUp);
  await catchUpScenario(sql, big, catchUp);
  await big.close();
  await liveLatencyScenario(`${dbUrl}?schema=live`);

  let sizedSchema = 'big';
  let stored = catchUp;
  if (flags.large) {
    const huge = await openPostgresStore({ url: `${dbUrl}?schema=huge`, poolSize: 1 });
    await huge.close();
    await fill(sql, 'huge', 10_000_000);
    sizedSchema = 'huge';
    stored = 10_000_000;
  }
  await appendAtSizeScenario(`${dbUrl}?schema=sized_empty`, `${dbUrl}?schema=${sizedSchema}`, stored);
  await logline.close();
  await sql.end();
}
