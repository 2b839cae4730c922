/**
 * Inline projections are read-your-writes from the moment startProjection resolves, on SQLite and
 * PostgreSQL alike: an append made right after it sees its events in the read model.
 */
import type { Database } from 'better-sqlite3';
import type postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import { defineProjection, type ProjectionDefinition, ProjectionStoppedError, startProjection } from '../../src/projections.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { event } from '../helpers/collect.js';
import { postgresBackend, sqliteBackend, type TestStore } from './stores.js';

/**
 * Counts events per type in `seen`; a 'Poison' event fails while `poisoned()` says so; a 'Switch'
 * event makes version 9 the active one, as a rebuild in another process would.
 */
function counting(kind: 'sqlite' | 'postgres', version: number, poisoned: () => boolean = () => false): ProjectionDefinition<never> {
  const fail = (type: string) => {
    if (type === 'Poison' && poisoned()) throw new Error('poisoned');
  };
  if (kind === 'sqlite') {
    return defineProjection<Database>({
      name: 'seen',
      version,
      tables: ['seen'],
      setup: ({ tx, table }) => void tx.exec(`CREATE TABLE ${table('seen')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
      handleBatch: (events, { tx, table }) => {
        const upsert = tx.prepare(`INSERT INTO ${table('seen')} (type, n) VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`);
        for (const e of events) {
          fail(e.type);
          upsert.run(e.type);
          if (e.type === 'Switch') tx.prepare(`UPDATE logline_projections SET active_version = 9 WHERE name = 'seen'`).run();
        }
      },
    });
  }
  return defineProjection<postgres.TransactionSql>({
    name: 'seen',
    version,
    tables: ['seen'],
    setup: async ({ tx, table }) => void (await tx.unsafe(`CREATE TABLE ${table('seen')} (type text PRIMARY KEY, n integer NOT NULL)`)),
    handleBatch: async (events, { tx, table }) => {
      for (const e of events) fail(e.type);
      const schema = table('seen').split('.')[0];
      if (events.some((e) => e.type === 'Switch'))
        await tx.unsafe(`UPDATE ${schema}.logline_projections SET active_version = 9 WHERE name = 'seen'`);
      // One statement per batch: the catch-up of a few thousand events stays fast.
      await tx.unsafe(
        `INSERT INTO ${table('seen')} AS s (type, n) SELECT type, count(*) FROM jsonb_array_elements_text($1::text::jsonb) AS type GROUP BY type
         ON CONFLICT (type) DO UPDATE SET n = s.n + excluded.n`,
        [JSON.stringify(events.map((e) => e.type))],
      );
    },
  });
}

async function countsOf(store: EventStore): Promise<Record<string, number>> {
  const rows =
    store.backend === 'sqlite'
      ? ((store as SqliteEventStore).database.prepare('SELECT type, n FROM seen').all() as Array<{ type: string; n: number }>)
      : await (store as PostgresEventStore).sql.unsafe(`SELECT type, n FROM ${(store as PostgresEventStore).schema}.seen`);
  return Object.fromEntries(rows.map((row) => [row.type as string, Number(row.n)]));
}

/** A log long enough that the catch-up takes several batches. */
async function fill(store: EventStore, events: number) {
  for (let i = 0; i < events / 100; i++)
    await store.append(
      `fill-${i}`,
      Array.from({ length: 100 }, () => event('A')),
    );
}

for (const backend of [sqliteBackend, postgresBackend]) {
  describe(`inline projections start read-your-writes (${backend.name})`, () => {
    let opened: TestStore[] = [];
    const open = async () => {
      const t = await backend.open();
      opened.push(t);
      return t.store;
    };
    afterEach(async () => {
      for (const t of opened) await t.dispose();
      opened = [];
    });
    const kind = backend.name as 'sqlite' | 'postgres';

    it('an append right after startProjection resolves is in the read model when append resolves', async () => {
      const store = await open();
      await fill(store, 1000);
      const projection = await startProjection(store, counting(kind, 1), { mode: 'inline', batchSize: 100 });
      const { position } = await store.append('s', [event('B')]);
      expect(await countsOf(store)).toEqual({ A: 1000, B: 1 });
      expect(projection.status).toBe('live');
      await projection.waitForPosition(position, { timeout: 2000 });
      await projection.stop();
    });

    it('a rebuild in inline mode: once startProjection resolves, the new version is active and current', async () => {
      const store = await open();
      await fill(store, 1000);
      const v1 = await startProjection(store, counting(kind, 1), { mode: 'inline', batchSize: 100 });
      const v2 = await startProjection(store, counting(kind, 2), { mode: 'inline', batchSize: 100 });
      await store.append('s', [event('B')]);
      expect(await countsOf(store)).toEqual({ A: 1000, B: 1 });
      await v2.stop();
      await v1.stop();
    });

    it('a projection that stops during its catch-up rejects startProjection and leaves appends alone', async () => {
      const store = await open();
      await fill(store, 300);
      await store.append('s', [event('Poison')]);
      let poisoned = true;
      const start = startProjection(
        store,
        counting(kind, 1, () => poisoned),
        {
          mode: 'inline',
          batchSize: 100,
          retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
        },
      );
      await expect(start).rejects.toBeInstanceOf(ProjectionStoppedError);
      await expect(start).rejects.toThrow(/failed 2 times and was parked: poisoned/);
      // No hook was left behind: appends work and do not touch the read model.
      await store.append('s', [event('Poison'), event('B')]);
      expect(await countsOf(store)).toEqual({ A: 300 });
      poisoned = false;
      const again = await startProjection(store, counting(kind, 1), { mode: 'inline', batchSize: 100 });
      await store.append('s', [event('B')]);
      expect(await countsOf(store)).toEqual({ A: 300, Poison: 2, B: 2 });
      await again.stop();
    });

    it('a projection superseded during its catch-up rejects startProjection with ProjectionStopped', async () => {
      const store = await open();
      await store.append('s', [event('Switch')]);
      await fill(store, 300);
      const start = startProjection(store, counting(kind, 1), { mode: 'inline', batchSize: 100 });
      await expect(start).rejects.toBeInstanceOf(ProjectionStoppedError);
      await expect(start).rejects.toThrow(/superseded by version 9/);
      await store.append('s', [event('B')]);
      expect(await countsOf(store)).toEqual({ Switch: 1, A: 99 });
    });
  });
}
