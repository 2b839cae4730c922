/**
 * A projection's query-only `indexes`: built once a long catch-up is done (one sort per index
 * instead of an index update per row), before a rebuild switches over; at once when there is
 * little to catch up. On real SQLite files and a real PostgreSQL schema.
 */
import type { Database } from 'better-sqlite3';
import type postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { InvalidArgumentError } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import { defineProjection, type ProjectionContext, startProjection, waitForPosition } from '../../src/projections.js';
import { event } from '../helpers/collect.js';
import { postgresBackend, postgresReachable, sqliteBackend, type TestStore } from './stores.js';

/** How a test reads and writes SQL on one backend, inside a projection's transaction or outside it. */
interface Dialect {
  name: 'sqlite' | 'postgres';
  backend: typeof sqliteBackend;
  exec(ctx: ProjectionContext, sql: string): unknown;
  /** Whether the index exists, seen from inside the transaction (SQLite handlers must stay synchronous). */
  hasIndex(ctx: ProjectionContext, index: string): boolean | Promise<boolean>;
  indexExists(store: EventStore, index: string): Promise<boolean>;
}

const sqliteHasIndex = (db: Database, index: string) =>
  db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?").pluck().get(index) === 1;

const sqlite: Dialect = {
  name: 'sqlite',
  backend: sqliteBackend,
  exec: ({ tx }, sql) => (tx as Database).exec(sql),
  hasIndex: ({ tx }, index) => sqliteHasIndex(tx as Database, index),
  indexExists: async (store, index) => sqliteHasIndex((store as unknown as { database: Database }).database, index),
};

const pgIndexCount = async (sql: postgres.Sql | postgres.TransactionSql, schema: string, index: string) =>
  ((await sql.unsafe('SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [schema, index]))[0]
    ?.n as number) === 1;

const pg: Dialect = {
  name: 'postgres',
  backend: postgresBackend,
  exec: ({ tx }, sql) => (tx as postgres.TransactionSql).unsafe(sql),
  hasIndex: (ctx) => {
    const [schema, table] = ctx.table('items').split('.') as [string, string];
    return pgIndexCount(ctx.tx as postgres.TransactionSql, schema, `${table}_by_n`);
  },
  indexExists: (store, index) => pgIndexCount((store as PostgresEventStore).sql, (store as PostgresEventStore).schema, index),
};

/**
 * One row per event into `items`; a query-only index on `n`. Records, for each event it handles,
 * whether the index existed then, and how often `indexes` ran.
 */
function itemsProjection(dialect: Dialect, version = 1) {
  const seen: boolean[] = [];
  let indexRuns = 0;
  const bare = (ctx: ProjectionContext) => ctx.table('items').split('.').pop() as string;
  const definition = defineProjection({
    name: 'items',
    version,
    tables: ['items'],
    setup: (ctx) => dialect.exec(ctx, `CREATE TABLE ${ctx.table('items')} (position BIGINT PRIMARY KEY, n INTEGER NOT NULL)`),
    indexes: (ctx) => {
      indexRuns += 1;
      return dialect.exec(ctx, `CREATE INDEX IF NOT EXISTS ${bare(ctx)}_by_n ON ${ctx.table('items')} (n)`);
    },
    handlers: {
      A: (e, ctx) => {
        const insert = () =>
          dialect.exec(ctx, `INSERT INTO ${ctx.table('items')} (position, n) VALUES (${e.position}, ${e.streamVersion})`);
        const exists = dialect.hasIndex(ctx, `${bare(ctx)}_by_n`);
        if (typeof exists === 'boolean') {
          seen.push(exists);
          return insert();
        }
        return exists.then((value) => {
          seen.push(value);
          return insert();
        });
      },
    },
  });
  return { definition, seen, indexRuns: () => indexRuns };
}

const appendEvents = async (store: EventStore, count: number) => {
  for (let i = 0; i < count; i += 10)
    await store.append(
      `s-${i}`,
      Array.from({ length: Math.min(10, count - i) }, () => event('A')),
    );
};

for (const dialect of [sqlite, ...(postgresReachable ? [pg] : [])]) {
  describe(`projection indexes on ${dialect.name}`, () => {
    let opened: TestStore[] = [];
    const open = async () => {
      const t = await dialect.backend.open();
      opened.push(t);
      return t.store;
    };
    afterEach(async () => {
      for (const t of opened) await t.dispose();
      opened = [];
    });

    it('a version more than batchSize behind builds its indexes once caught up: rows before, index after', async () => {
      const store = await open();
      await appendEvents(store, 50);
      const items = itemsProjection(dialect);
      const projection = await startProjection(store, items.definition, { batchSize: 10 });
      await waitForPosition(projection, 50n);
      // Pages end at 10, 20, 30, 40: after the one ending at 40 the rest (10) fits in a batch.
      expect(items.seen).toEqual([...Array(40).fill(false), ...Array(10).fill(true)]);
      expect(items.indexRuns()).toBe(1);
      expect(await dialect.indexExists(store, 'items_v1_by_n')).toBe(true);
      await projection.stop();
      // A restart with nothing to catch up runs them again, at once (they are idempotent).
      const again = itemsProjection(dialect);
      const restarted = await startProjection(store, again.definition, { batchSize: 10 });
      expect(again.indexRuns()).toBe(1);
      await store.append('s-late', [event('A')]);
      await waitForPosition(restarted, 51n);
      expect(again.seen).toEqual([true]);
      await restarted.stop();
    });

    it('a version with at most batchSize to catch up creates them before its first event', async () => {
      const store = await open();
      await appendEvents(store, 8);
      const items = itemsProjection(dialect);
      const projection = await startProjection(store, items.definition, { batchSize: 10 });
      await waitForPosition(projection, 8n);
      expect(items.seen).toEqual(Array(8).fill(true));
      await projection.stop();
    });

    it('a rebuild switches over only once its indexes exist', async () => {
      const store = await open();
      await appendEvents(store, 30);
      const v1 = itemsProjection(dialect, 1);
      const live = await startProjection(store, v1.definition, { batchSize: 10 });
      await waitForPosition(live, 30n);
      const v2 = itemsProjection(dialect, 2);
      const rebuild = await startProjection(store, v2.definition, { batchSize: 10, dropOld: false });
      const indexWhenActive = rebuild.active.then(() => dialect.indexExists(store, 'items_v2_by_n'));
      expect(await indexWhenActive).toBe(true);
      expect(v2.seen.slice(0, 20)).toEqual(Array(20).fill(false));
      await rebuild.stop();
      await live.stop();
    });

    it('refuses indexes that are not a function', () => {
      const bad = { name: 'bad', tables: ['t'], handlers: { A: () => {} }, indexes: 'CREATE INDEX' as never };
      expect(() => defineProjection(bad)).toThrow(InvalidArgumentError);
    });
  });
}
