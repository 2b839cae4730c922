/**
 * Exactly-once needs a batch's read-model writes and its checkpoint to commit together. A kill -9
 * rarely lands between two such commits, so this test fails the checkpoint write itself, at will:
 * a trigger on the checkpoints table refuses this projection's checkpoint while it is armed. The
 * projection retries the batch; when the trigger is dropped it goes on. If the writes had been
 * committed apart from the checkpoint, every failed attempt would have left its effects behind and
 * the retries would count events twice; committed together, the read model ends exact.
 */
import type { Database } from 'better-sqlite3';
import type postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import { defineProjection, type ProjectionHandle, startProjection, waitForPosition } from '../../src/projections.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { event, sleep } from '../helpers/collect.js';
import { type Backend, postgresBackend, postgresReachable, sqliteBackend } from './stores.js';

const TYPES = ['A', 'B', 'C'];
const INJECTED = 'injected: the checkpoint write failed';

interface Target {
  backend: Backend;
  /** The projection: counts events per type. */
  start(store: EventStore): Promise<ProjectionHandle>;
  /** Makes every write of the checkpoint `name` fail; returns the function that disarms it. */
  failCheckpoint(store: EventStore, name: string): Promise<() => Promise<void>>;
  counts(store: EventStore): Promise<Array<[string, number]>>;
}

const options = { batchSize: 7, retry: { initialDelayMs: 5, maxDelayMs: 20 } };

const sqlite: Target = {
  backend: sqliteBackend,
  start: (store) =>
    startProjection(
      store,
      defineProjection<Database>({
        name: 'exact',
        tables: ['type_counts'],
        setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('type_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
        handlers: Object.fromEntries(
          TYPES.map((type) => [
            type,
            (e, { tx, table }) =>
              void tx.prepare(`INSERT INTO ${table('type_counts')} VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`).run(e.type),
          ]),
        ),
      }),
      options,
    ),
  async failCheckpoint(store, name) {
    const db = (store as SqliteEventStore).database;
    for (const when of ['INSERT', 'UPDATE']) {
      db.exec(`CREATE TRIGGER fail_checkpoint_${when} BEFORE ${when} ON logline_checkpoints
               WHEN NEW.name = '${name}' BEGIN SELECT RAISE(ABORT, '${INJECTED}'); END`);
    }
    return async () => {
      for (const when of ['INSERT', 'UPDATE']) db.exec(`DROP TRIGGER fail_checkpoint_${when}`);
    };
  },
  async counts(store) {
    return (store as SqliteEventStore).database.prepare('SELECT type, n FROM type_counts ORDER BY type').raw().all() as Array<
      [string, number]
    >;
  },
};

const pg: Target = {
  backend: postgresBackend,
  start: (store) =>
    startProjection(
      store,
      defineProjection<postgres.TransactionSql>({
        name: 'exact',
        tables: ['type_counts'],
        setup: async ({ tx, table }) => {
          await tx.unsafe(`CREATE TABLE ${table('type_counts')} (type text PRIMARY KEY, n integer NOT NULL)`);
        },
        handlers: Object.fromEntries(
          TYPES.map((type) => [
            type,
            async (e, { tx, table }) => {
              await tx.unsafe(`INSERT INTO ${table('type_counts')} AS t VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET n = t.n + 1`, [
                e.type,
              ]);
            },
          ]),
        ),
      }),
      options,
    ),
  async failCheckpoint(store, name) {
    const { sql, schema } = store as PostgresEventStore;
    await sql.unsafe(`CREATE FUNCTION ${schema}.fail_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION '${INJECTED}'; END $$`);
    await sql.unsafe(`CREATE TRIGGER fail_checkpoint BEFORE INSERT OR UPDATE ON ${schema}.logline_checkpoints
                      FOR EACH ROW WHEN (NEW.name = '${name}') EXECUTE FUNCTION ${schema}.fail_checkpoint()`);
    return async () => {
      await sql.unsafe(`DROP TRIGGER fail_checkpoint ON ${schema}.logline_checkpoints`);
    };
  },
  async counts(store) {
    const { sql, schema } = store as PostgresEventStore;
    return (await sql.unsafe(`SELECT type, n FROM ${schema}.type_counts ORDER BY type`).values()) as unknown as Array<[string, number]>;
  },
};

const targets = [sqlite, ...(postgresReachable ? [pg] : [])];

describe.each(targets.map((target) => ({ name: target.backend.name, target })))('projection checkpoint atomicity ($name)', ({ target }) => {
  it('a batch whose checkpoint write fails leaves no effect behind: retried, the read model ends exact', async () => {
    const { store, dispose } = await target.backend.open();
    try {
      await store.append('warm-up', [event('A')]);
      const projection = await target.start(store);
      await waitForPosition(projection, 1n);
      const disarm = await target.failCheckpoint(store, 'exact@v1');
      let head = 1n;
      for (let i = 0; i < 10; i++) {
        ({ position: head } = await store.append(
          `s-${i % 4}`,
          Array.from({ length: 5 }, (_, j) => event(TYPES[(i + j) % 3] as string, { i, j })),
        ));
      }
      // Let the projection fail on its checkpoint several times before the fault is lifted.
      for (const deadline = Date.now() + 10_000; !String(projection.lastError).includes(INJECTED); await sleep(5)) {
        if (Date.now() > deadline) throw new Error(`the injected failure never happened (lastError: ${String(projection.lastError)})`);
      }
      expect(projection.position).toBe(1n);
      await sleep(100);
      expect(projection.status).toBe('retrying');
      expect(projection.position).toBe(1n);
      await disarm();
      await waitForPosition(projection, head, { timeout: 10_000 });
      const expected = new Map<string, number>();
      for await (const e of store.readAll()) expected.set(e.type, (expected.get(e.type) ?? 0) + 1);
      expect(await target.counts(store)).toEqual([...expected].sort(([a], [b]) => a.localeCompare(b)));
      await projection.stop();
    } finally {
      await dispose();
    }
  });
});
