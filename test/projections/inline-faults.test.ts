/**
 * One bad event must not block all appends (issue 10, item 14): an inline projection whose
 * handler fails on an event another process wrote (applied during the hook's gap catch-up) lets
 * the store's own appends through, and handles that event with its retry/park/onFailure policy,
 * reported in lag and parked events. SQLite and PostgreSQL, with a real second process.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from 'better-sqlite3';
import type postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/postgres.js';
import {
  defineProjection,
  getLag,
  listParked,
  type ProjectionOptions,
  ProjectionStoppedError,
  startProjection,
  waitForPosition,
} from '../../src/projections.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/sqlite.js';
import { event, sleep } from '../helpers/collect.js';
import { freshSchemaUrl } from '../helpers/postgres.js';
import { runTs } from '../helpers/process.js';
import { postgresReachable, tempDir } from './stores.js';

const APPENDER = fileURLToPath(new URL('./fixtures/appending-child.ts', import.meta.url));
const fastRetry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 };
const TYPES = ['A', 'B', 'Poison'];

const sqliteCounting = defineProjection<Database>({
  name: 'poisoncount',
  tables: ['poison_counts'],
  setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('poison_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
  handlers: Object.fromEntries(
    TYPES.map((type) => [
      type,
      (e, { tx, table }) => {
        tx.prepare(`INSERT INTO ${table('poison_counts')} VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`).run(e.type);
        if (e.type === 'Poison') throw new Error('poisoned');
      },
    ]),
  ),
});

const postgresCounting = defineProjection<postgres.TransactionSql>({
  name: 'poisoncount',
  tables: ['poison_counts'],
  setup: async ({ tx, table }) => {
    await tx.unsafe(`CREATE TABLE ${table('poison_counts')} (type text PRIMARY KEY, n integer NOT NULL)`);
  },
  handlers: Object.fromEntries(
    TYPES.map((type) => [
      type,
      async (e, { tx, table }) => {
        await tx.unsafe(`INSERT INTO ${table('poison_counts')} AS t VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET n = t.n + 1`, [e.type]);
        if (e.type === 'Poison') throw new Error('poisoned');
      },
    ]),
  ),
});

interface Setup {
  store: EventStore;
  url: string;
  counts(): Promise<Record<string, number>>;
  dispose(): Promise<void>;
}

const backends: Array<{ name: string; reachable: boolean; open(): Promise<Setup> }> = [
  {
    name: 'sqlite',
    reachable: true,
    async open() {
      const tmp = tempDir();
      const path = join(tmp.dir, 'events.db');
      const store: SqliteEventStore = await openSqliteStore({ path, synchronous: 'normal' });
      return {
        store,
        url: `sqlite:${path}`,
        counts: async () =>
          Object.fromEntries(store.database.prepare('SELECT type, n FROM poison_counts ORDER BY type').raw().all() as [string, number][]),
        async dispose() {
          await store.close();
          tmp.remove();
        },
      };
    },
  },
  {
    name: 'postgres',
    reachable: postgresReachable,
    async open() {
      const fresh = await freshSchemaUrl();
      const store: PostgresEventStore = await openPostgresStore({ url: fresh.url, pollMs: 100 });
      return {
        store,
        url: fresh.url,
        counts: async () =>
          Object.fromEntries(
            (await store.sql.unsafe(`SELECT type, n FROM ${store.schema}.poison_counts ORDER BY type`).values()).map(([type, n]) => [
              type as string,
              n as number,
            ]),
          ),
        async dispose() {
          await store.close();
          await fresh.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe.skipIf(!backend.reachable)(`inline projection and an event it cannot handle, on ${backend.name}`, () => {
    const start = (setup: Setup, options: ProjectionOptions) =>
      startProjection(setup.store, (setup.store.backend === 'sqlite' ? sqliteCounting : postgresCounting) as never, {
        mode: 'inline',
        retry: fastRetry,
        ...options,
      });

    it("onFailure 'skip': the store's appends go on, the event is parked, and the projection is inline again", async () => {
      const setup = await backend.open();
      try {
        const { store } = setup;
        const projection = await start(setup, { onFailure: 'skip' });
        await projection.active;
        await store.append('mine-1', [event('A')]);
        expect(await setup.counts()).toEqual({ A: 1 });
        // Another process writes an event the handler throws on.
        await runTs(APPENDER, [setup.url, 'theirs', 'Poison']);
        // The next appends of this store apply it first (gap catch-up): they must not fail.
        await store.append('mine-2', [event('B')]);
        const { position } = await store.append('mine-3', [event('A')]);
        await waitForPosition(projection, position, { timeout: 10_000 });
        expect(await setup.counts()).toEqual({ A: 2, B: 1 });
        const parked = await listParked(store, { consumer: 'poisoncount@v1' });
        expect(parked.map((p) => [p.position, p.event.streamId, p.error, p.attempts])).toEqual([[2n, 'theirs', 'poisoned', 3]]);
        expect(await getLag(store, 'poisoncount')).toMatchObject({ parked: 1, lagPositions: 0 });
        // Back to inline: an append is in the read model when it resolves.
        let readYourWrites = false;
        for (let i = 0; i < 100 && !readYourWrites; i++) {
          const before = (await setup.counts()).B ?? 0;
          await store.append('mine-4', [event('B')]);
          readYourWrites = (await setup.counts()).B === before + 1;
          if (!readYourWrites) await sleep(50);
        }
        expect(readYourWrites).toBe(true);
        await projection.stop();
      } finally {
        await setup.dispose();
      }
    }, 30_000);

    it("onFailure 'stop': the store's appends go on; the projection stops, reporting the parked event and its lag", async () => {
      const setup = await backend.open();
      try {
        const { store } = setup;
        const projection = await start(setup, {});
        await projection.active;
        await store.append('mine-1', [event('A')]);
        await runTs(APPENDER, [setup.url, 'theirs', 'Poison']);
        for (let i = 0; i < 5; i++) await store.append(`mine-${i + 2}`, [event('B')]);
        await expect(projection.done).rejects.toBeInstanceOf(ProjectionStoppedError);
        expect(projection.status).toBe('stopped');
        expect(await store.headPosition()).toBe(7n);
        // Nothing after the bad event is in the read model; the checkpoint waits before it.
        expect(await setup.counts()).toEqual({ A: 1 });
        expect(await getLag(store, 'poisoncount')).toMatchObject({ checkpoint: 1n, lagPositions: 6, parked: 1 });
        await store.append('mine-9', [event('A')]);
        expect(await store.headPosition()).toBe(8n);
      } finally {
        await setup.dispose();
      }
    }, 30_000);
  });
}
