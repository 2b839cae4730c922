/**
 * Projections on the NATS store: durable subscriptions with their checkpoint and parked events in
 * JetStream, and SQL read models that live in SQLite or PostgreSQL (the checkpoint with them).
 * Positions on NATS have gaps, so these tests use the positions the store hands out.
 */
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { TransactionSql } from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '../../src/index.js';
import { InvalidArgumentError } from '../../src/index.js';
import { openPostgresStore } from '../../src/postgres.js';
import {
  defineProjection,
  getLag,
  listParked,
  replayParked,
  startProjection,
  startSubscription,
  waitForPosition,
} from '../../src/projections.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/sqlite.js';
import { collect, event } from '../helpers/collect.js';
import { freshSchemaUrl } from '../helpers/postgres.js';
import { natsBackend, natsReachable, postgresReachable, type TestStore, tempDir } from './stores.js';

const fastRetry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 };

describe.skipIf(!natsReachable)('projections on nats', () => {
  let opened: TestStore[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  const open = async () => {
    const t = await natsBackend.open();
    opened.push(t);
    return t.store;
  };
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const t of opened) await t.dispose();
    opened = [];
  });
  const positions = async (store: EventStore) => (await collect(store.readAll())).map((e) => e.position);

  it('a durable subscription keeps its checkpoint in JetStream: a restart continues where it stopped', async () => {
    const store = await open();
    const { position: second } = await store.append('s', [event('A'), event('B')]);
    const seen: bigint[] = [];
    const first = await startSubscription(store, { name: 'durable', handler: (e) => void seen.push(e.position) });
    await waitForPosition(first, second);
    await first.stop();
    const { position: third } = await store.append('s', [event('C')]);
    const again = await startSubscription(store, { name: 'durable', from: 'end', handler: (e) => void seen.push(e.position) });
    await waitForPosition(again, third);
    await again.stop();
    expect(seen).toEqual(await positions(store));
    expect((await getLag(store, 'durable')).checkpoint).toBe(third);
  });

  it("remembers where 'end' was across a restart", async () => {
    const store = await open();
    await store.append('s', [event('A')]);
    const sub = await startSubscription(store, { name: 'tail', from: 'end', handler: () => {} });
    await sub.stop();
    const { position } = await store.append('s', [event('B')]);
    const seen: bigint[] = [];
    const again = await startSubscription(store, { name: 'tail', from: 'end', handler: (e) => void seen.push(e.position) });
    await waitForPosition(again, position);
    await again.stop();
    expect(seen).toEqual([position]);
  });

  it('parks a failing event in JetStream after its retries, skips on, and replays it on request', async () => {
    const store = await open();
    await store.append('s', [event('Ok'), event('Poison'), event('Ok')]);
    const [ok1, poison, ok2] = await positions(store);
    let healed = false;
    const handled: bigint[] = [];
    const sub = await startSubscription(store, {
      name: 'skipper',
      retry: fastRetry,
      onFailure: 'skip',
      handler: (e) => {
        if (e.type === 'Poison' && !healed) throw new Error('cannot digest poison');
        handled.push(e.position);
      },
    });
    await waitForPosition(sub, ok2 as bigint);
    expect(handled).toEqual([ok1, ok2]);
    const parked = await listParked(store, { consumer: 'skipper' });
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ position: poison, attempts: 3, error: 'cannot digest poison' });
    healed = true;
    expect(await replayParked(sub)).toEqual({ replayed: 1, failed: [] });
    expect(handled).toEqual([ok1, ok2, poison]);
    expect(await listParked(store, { consumer: 'skipper' })).toEqual([]);
    await sub.stop();
  });

  it('refuses inline projections (no append transaction to join)', async () => {
    const store = await open();
    const projection = defineProjection({ name: 'p', handlers: { A: () => {} } });
    await expect(startProjection(store, projection, { mode: 'inline' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  describe('SQL read models fed from NATS', () => {
    /** Counts events per type; with `poison`, throws after writing (the write must roll back). */
    const sqliteCounts = (poison: () => boolean) =>
      defineProjection<Database>({
        name: 'counts',
        tables: ['type_counts'],
        setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('type_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
        handlers: Object.fromEntries(
          ['A', 'B', 'Poison'].map((type) => [
            type,
            (e: RecordedEvent, { tx, table }: { tx: Database; table(name: string): string }) => {
              tx.prepare(`INSERT INTO ${table('type_counts')} (type, n) VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`).run(
                e.type,
              );
              if (e.type === 'Poison' && poison()) throw new Error('poisoned');
            },
          ]),
        ),
      });

    it('SQLite: handler writes and the checkpoint commit together in the read-model database, each event once', async () => {
      const store = await open();
      const tmp = tempDir();
      const readModel = (await openSqliteStore({ path: join(tmp.dir, 'read.db'), synchronous: 'normal' })) as SqliteEventStore;
      cleanups.push(
        () => tmp.remove(),
        () => readModel.close(),
      );
      for (let i = 0; i < 4; i++) await store.append(`s-${i}`, [event('A'), event('B'), event('Poison'), event('A')]);
      let failures = 0;
      // The first Poison fails twice after its write: the batch rolls back and is redone, never counted twice.
      const poison = () => failures++ < 2;
      const projection = await startProjection(store, sqliteCounts(poison), { readModel, batchSize: 3, retry: fastRetry });
      const head = await store.headPosition();
      await waitForPosition(projection, head, { timeout: 10_000 });
      const counts = () =>
        Object.fromEntries(readModel.database.prepare('SELECT type, n FROM type_counts ORDER BY type').raw().all() as [string, number][]);
      expect(counts()).toEqual({ A: 8, B: 4, Poison: 4 });
      expect(failures).toBe(6);
      // The checkpoint lives beside the read model, not in JetStream.
      const stored = readModel.database.prepare("SELECT position FROM logline_checkpoints WHERE name = 'counts@v1'").pluck().get();
      expect(BigInt(stored as number)).toBe(head);
      expect((await getLag(readModel, 'counts@v1')).checkpoint).toBe(head);
      await projection.stop();
      // A restart continues from the checkpoint: nothing applied twice.
      const { position } = await store.append('s-9', [event('B')]);
      const again = await startProjection(
        store,
        sqliteCounts(() => false),
        { readModel },
      );
      await waitForPosition(again, position, { timeout: 10_000 });
      expect(counts()).toEqual({ A: 8, B: 5, Poison: 4 });
      await again.stop();
    });

    it.skipIf(!postgresReachable)('PostgreSQL: the same, in a schema of the read-model database', async () => {
      const store = await open();
      const schema = await freshSchemaUrl();
      const readModel = await openPostgresStore({ url: schema.url, poolSize: 2 });
      cleanups.push(schema.drop, () => readModel.close());
      const counts = defineProjection<TransactionSql>({
        name: 'counts',
        tables: ['type_counts'],
        setup: async ({ tx, table }) => {
          await tx.unsafe(`CREATE TABLE ${table('type_counts')} (type text PRIMARY KEY, n integer NOT NULL)`);
        },
        handlers: {
          A: async (e, { tx, table }) => {
            await tx.unsafe(
              `INSERT INTO ${table('type_counts')} (type, n) VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET n = ${table('type_counts')}.n + 1`,
              [e.type],
            );
          },
        },
      });
      for (let i = 0; i < 3; i++) await store.append(`s-${i}`, [event('A'), event('B'), event('A')]);
      const projection = await startProjection(store, counts, { readModel, batchSize: 4 });
      const head = await store.headPosition();
      await waitForPosition(projection, head, { timeout: 10_000 });
      const [row] = await readModel.sql<{ n: number }[]>`SELECT n FROM ${readModel.sql(readModel.schema)}.type_counts WHERE type = 'A'`;
      expect(row?.n).toBe(6);
      expect((await getLag(readModel, 'counts@v1')).checkpoint).toBe(head);
      await projection.stop();
    });
  });
});
