/**
 * Projections suite.
 *  1. Catch-up: a counting projection (one UPSERT per event into a SQL table, checkpoint in the
 *     same transaction) from the start of a 1M-event log, next to the raw rate of readAll over
 *     the same log: the projection's overhead. SQLite, and PostgreSQL when it answers.
 *  2. Append → visible: a steady load of single-event appends while an async projection runs;
 *     per append, the time from append() resolving to waitForPosition() resolving.
 *  3. Views that ignore the events (SQLite): 16 writers append as fast as they can while the
 *     counting projection runs, alone and beside 3 projections that handle none of the events
 *     (each batch of ignored events only moves their checkpoints).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type postgres from 'postgres';
import type { EventStore, NewEvent, RecordedEvent } from '../src/index.js';
import { openPostgresStore } from '../src/postgres.js';
import { defineProjection, startProjection, waitForPosition } from '../src/projections.js';
import { openSqliteStore } from '../src/sqlite.js';
import { countEvents, flags, measureRead, percentile, printScenario, type Result } from './harness.js';

const DIR = join(process.cwd(), '.bench-data', 'projections');
const PG_URL = process.env.LOGLINE_BENCH_PG_URL ?? process.env.LOGLINE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TYPES = ['OrderPlaced', 'OrderPaid', 'OrderShipped', 'OrderCancelled'];
/** Events per projection transaction while catching up. PostgreSQL pays 3 round trips per batch (BEGIN, the work, COMMIT). */
const SQLITE_BATCH = 1000;
const POSTGRES_BATCH = 5000;

const newEvent = (i: number): NewEvent => ({
  type: TYPES[i % TYPES.length] as string,
  data: { orderId: `order-${i}`, customer: i % 1000, total: 22.99, lines: [{ sku: 'DONUT-PINK', quantity: 12 }] },
  metadata: { correlationId: `c-${i}` },
});

const sqliteCounting = defineProjection<Database>({
  name: 'bench_counts',
  tables: ['type_counts'],
  setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('type_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
  handlers: Object.fromEntries(
    TYPES.map((type) => {
      let statement: ReturnType<Database['prepare']> | undefined;
      let forDb: Database | undefined;
      return [
        type,
        (event, { tx, table }) => {
          // Prepared once per connection: what a real handler would do.
          if (forDb !== tx) {
            statement = tx.prepare(`INSERT INTO ${table('type_counts')} VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`);
            forDb = tx;
          }
          statement?.run(event.type);
        },
      ];
    }),
  ),
});

const postgresCounting = defineProjection<postgres.TransactionSql>({
  name: 'bench_counts',
  tables: ['type_counts'],
  setup: async ({ tx, table }) => {
    await tx.unsafe(`CREATE TABLE ${table('type_counts')} (type text PRIMARY KEY, n bigint NOT NULL)`);
  },
  handlers: Object.fromEntries(
    TYPES.map((type) => [
      type,
      async (event, { tx, table }) => {
        await tx.unsafe(
          `INSERT INTO ${table('type_counts')} AS t VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET n = t.n + 1`,
          [event.type],
          {
            prepare: true,
          },
        );
      },
    ]),
  ),
});

/** The same count, set-based: one UPSERT per event type per batch (handleBatch). */
const countByType = (events: RecordedEvent[]) => {
  const counts = new Map<string, number>();
  for (const event of events) counts.set(event.type, (counts.get(event.type) ?? 0) + 1);
  return counts;
};

const sqliteBatchCounting = defineProjection<Database>({
  name: 'bench_batch_counts',
  tables: ['batch_type_counts'],
  setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('batch_type_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
  handleBatch(events, { tx, table }) {
    const upsert = tx.prepare(
      `INSERT INTO ${table('batch_type_counts')} VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET n = n + excluded.n`,
    );
    for (const [type, n] of countByType(events)) upsert.run(type, n);
  },
});

const postgresBatchCounting = defineProjection<postgres.TransactionSql>({
  name: 'bench_batch_counts',
  tables: ['batch_type_counts'],
  setup: async ({ tx, table }) => {
    await tx.unsafe(`CREATE TABLE ${table('batch_type_counts')} (type text PRIMARY KEY, n bigint NOT NULL)`);
  },
  async handleBatch(events, { tx, table }) {
    const counts = [...countByType(events)];
    await tx.unsafe(
      `INSERT INTO ${table('batch_type_counts')} AS t SELECT * FROM json_to_recordset($1::text::json) AS x(type text, n bigint)
       ON CONFLICT (type) DO UPDATE SET n = t.n + excluded.n`,
      [JSON.stringify(counts.map(([type, n]) => ({ type, n })))],
    );
  },
});

async function fill(store: EventStore, total: number): Promise<void> {
  const perAppend = 1000;
  const pending: Promise<unknown>[] = [];
  for (let a = 0; a * perAppend < total; a++) {
    pending.push(
      store.append(
        `order-${a % 500}`,
        Array.from({ length: perAppend }, (_, i) => newEvent(a * perAppend + i)),
      ),
    );
    if (pending.length >= 8) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

type AnyProjection = ReturnType<typeof defineProjection>;

async function catchUp(
  label: string,
  store: EventStore,
  perEvent: AnyProjection,
  batched: AnyProjection,
  total: number,
  batchSize: number,
): Promise<Result[]> {
  const raw = await measureRead('raw readAll', () => countEvents(store.readAll()));
  const project = (what: string, definition: AnyProjection) =>
    measureRead(`${label} ${what}`, async () => {
      const projection = await startProjection(store, definition, { batchSize });
      await waitForPosition(projection, await store.headPosition(), { timeout: 3_600_000 });
      await projection.stop();
      return total;
    });
  return [
    raw,
    await project('counting projection, one UPSERT per event', perEvent),
    await project('counting projection, handleBatch', batched),
  ];
}

async function visibleLatency(
  label: string,
  store: EventStore,
  definition: ReturnType<typeof defineProjection>,
  appends: number,
  perSecond: number,
): Promise<Result> {
  const projection = await startProjection(store, definition);
  await waitForPosition(projection, await store.headPosition(), { timeout: 3_600_000 });
  const latencies: number[] = [];
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < appends; i++) {
    // Open loop at a steady rate: the next append does not wait for the previous one to show.
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      (async () => {
        const { position } = await store.append(`latency-${i % 50}`, [newEvent(i)]);
        const t0 = performance.now();
        await waitForPosition(projection, position, { timeout: 60_000 });
        latencies.push(performance.now() - t0);
      })(),
    );
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - start) / 1000;
  await projection.stop();
  latencies.sort((a, b) => a - b);
  return {
    label: `${label} (${perSecond} appends/s)`,
    events: appends,
    seconds,
    eventsPerSec: appends / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/**
 * 16 closed-loop writers for `seconds` with the counting projection and `ignoring` projections
 * that handle none of the events; appends/s, and append → visible in the counting projection
 * for every tenth append.
 */
async function besideIgnoringViews(store: EventStore, ignoring: number, seconds: number): Promise<Result> {
  const counting = await startProjection(store, sqliteCounting as never);
  const others = [];
  for (let i = 0; i < ignoring; i++)
    others.push(await startProjection(store, { name: `ignores_${i}`, version: 1, tables: [], handlers: { Never() {} } }));
  await waitForPosition(counting, await store.headPosition(), { timeout: 3_600_000 });
  const latencies: number[] = [];
  let appends = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const writer = async (w: number) => {
    for (let i = 0; performance.now() < end; i++) {
      const { position } = await store.append(`ignored-${ignoring}-${w}-${i % 100}`, [newEvent(i)]);
      appends++;
      if (i % 10 !== 0) continue;
      const t0 = performance.now();
      await waitForPosition(counting, position, { timeout: 60_000 });
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
  const took = (performance.now() - start) / 1000;
  for (const projection of [counting, ...others]) await projection.stop();
  latencies.sort((a, b) => a - b);
  return {
    label: ignoring === 0 ? 'counting projection alone' : `beside ${ignoring} projections that ignore the events`,
    events: appends,
    seconds: took,
    eventsPerSec: appends / took,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export async function run(): Promise<void> {
  const total = flags.quick ? 100_000 : 1_000_000;
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });

  {
    const store = await openSqliteStore({ path: join(DIR, 'catchup.db') });
    await fill(store, total);
    printScenario(
      `SQLite: catch-up over ${total.toLocaleString('en-US')} events (batch ${SQLITE_BATCH}, store synchronous=FULL)`,
      await catchUp('sqlite', store, sqliteCounting as never, sqliteBatchCounting as never, total, SQLITE_BATCH),
      'raw readAll',
    );
    await store.close();
  }
  {
    const store = await openSqliteStore({ path: join(DIR, 'latency.db') });
    printScenario('SQLite: append → visible in the projection (p50/p99 of the wait after append resolves)', [
      await visibleLatency('sqlite async projection', store, sqliteCounting as never, flags.quick ? 500 : 2000, 200),
    ]);
    await store.close();
  }
  {
    const seconds = flags.quick ? 2 : 8;
    const results: Result[] = [];
    for (const ignoring of [0, 3]) {
      const store = await openSqliteStore({ path: join(DIR, `ignored-${ignoring}.db`) });
      results.push(await besideIgnoringViews(store, ignoring, seconds));
      await store.close();
    }
    printScenario(
      'SQLite: 16 writers, append → visible in the counting projection, alone and beside projections that ignore the events',
      results,
      'counting projection alone',
    );
  }

  let pgTotal = flags.quick ? 50_000 : flags.large ? 1_000_000 : 200_000;
  const schema = `bench_projections_${process.pid}`;
  let store: Awaited<ReturnType<typeof openPostgresStore>> | undefined;
  try {
    store = await openPostgresStore({ url: PG_URL, schema });
  } catch (error) {
    console.log(`\n(PostgreSQL at ${PG_URL} unreachable, skipped: ${String(error)})`);
    return;
  }
  try {
    await fill(store, pgTotal);
    pgTotal = Number(await store.headPosition());
    printScenario(
      `PostgreSQL: catch-up over ${pgTotal.toLocaleString('en-US')} events (batch ${POSTGRES_BATCH})`,
      await catchUp('postgres', store, postgresCounting as never, postgresBatchCounting as never, pgTotal, POSTGRES_BATCH),
      'raw readAll',
    );
    printScenario('PostgreSQL: append → visible in the projection', [
      await visibleLatency('postgres async projection', store, postgresCounting as never, flags.quick ? 500 : 2000, 200),
    ]);
  } finally {
    await store.sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await store.close();
  }
}
