/** Projections into PostgreSQL read models (in the store's schema), async and inline, rebuild, crash safety. */
import type postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresStore, type PostgresEventStore } from '../../src/postgres.js';
import {
  defineProjection,
  listConsumers,
  listParked,
  ProjectionStoppedError,
  replayParked,
  startProjection,
  waitForPosition,
} from '../../src/projections.js';
import { event, sleep } from '../helpers/collect.js';
import { freshSchemaUrl, PG_URL } from '../helpers/postgres.js';
import { crashLoop } from './crash.js';
import { postgresBackend, postgresReachable, type TestStore } from './stores.js';

const fastRetry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 };
type Tx = postgres.TransactionSql;

const counting = (version = 1, options: { poison?: () => boolean } = {}) =>
  defineProjection<Tx>({
    name: 'counts',
    version,
    tables: ['type_counts'],
    setup: async ({ tx, table }) => {
      await tx.unsafe(`CREATE TABLE ${table('type_counts')} (type text PRIMARY KEY, n integer NOT NULL, weight integer NOT NULL)`);
    },
    handlers: Object.fromEntries(
      ['A', 'B', 'Poison'].map((type) => [
        type,
        async (e, { tx, table }) => {
          await tx.unsafe(
            `INSERT INTO ${table('type_counts')} AS t (type, n, weight) VALUES ($1, 1, $2)
             ON CONFLICT (type) DO UPDATE SET n = t.n + 1, weight = t.weight + excluded.weight`,
            [e.type, version],
          );
          // Throwing after the write: the write must roll back with the transaction.
          if (e.type === 'Poison' && options.poison?.()) throw new Error('poisoned');
        },
      ]),
    ),
  });

const countsOf = async (store: PostgresEventStore, table = 'type_counts') =>
  Object.fromEntries(
    (await store.sql.unsafe(`SELECT type, n FROM ${store.schema}.${table} ORDER BY type`)).map((row) => [
      row.type as string,
      row.n as number,
    ]),
  );

describe.skipIf(!postgresReachable)('projections on postgres', () => {
  let opened: TestStore[] = [];
  const open = async () => {
    const t = await postgresBackend.open();
    opened.push(t);
    return t.store as PostgresEventStore;
  };
  afterEach(async () => {
    for (const t of opened) await t.dispose();
    opened = [];
  });

  it('projects into a table in the store schema with its checkpoint; a restart applies nothing twice', async () => {
    const store = await open();
    await store.append('s-1', [event('A'), event('B'), event('A')]);
    const projection = await startProjection(store, counting());
    await waitForPosition(projection, 3n);
    expect(await countsOf(store)).toEqual({ A: 2, B: 1 });
    await projection.stop();
    await store.append('s-2', [event('B')]);
    const again = await startProjection(store, counting());
    await waitForPosition(again, 4n);
    expect(await countsOf(store)).toEqual({ A: 2, B: 2 });
    const [row] = await store.sql.unsafe(`SELECT position FROM ${store.schema}.logline_checkpoints WHERE name = 'counts@v1'`);
    expect(String(row?.position)).toBe('4');
    await again.stop();
  });

  it('two runners of one projection (two pools) never apply an event twice', async () => {
    const store = await open();
    const second = await openPostgresStore({ url: PG_URL, schema: store.schema });
    const runners = [
      await startProjection(store, counting(), { batchSize: 7 }),
      await startProjection(second, counting(), { batchSize: 3 }),
    ];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? store : second).append(`s-${i % 5}`, [event('A'), event('B'), event('A')])),
    );
    for (const runner of runners) await waitForPosition(runner, 90n, { timeout: 10_000 });
    expect(await countsOf(store)).toEqual({ A: 60, B: 30 });
    for (const runner of runners) await runner.stop();
    await second.close();
  });

  it('rolls back, retries, parks with error and stack, skips, replays', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('Poison'), event('B')]);
    let poisoned = true;
    const projection = await startProjection(store, counting(1, { poison: () => poisoned }), { retry: fastRetry, onFailure: 'skip' });
    await waitForPosition(projection, 3n);
    expect(await countsOf(store)).toEqual({ A: 1, B: 1 });
    const parked = await listParked(store, { consumer: 'counts@v1' });
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ position: 2n, attempts: 3, error: 'poisoned' });
    expect(parked[0]?.stack).toContain('poisoned');
    poisoned = false;
    expect(await replayParked(projection)).toEqual({ replayed: 1, failed: [] });
    expect(await countsOf(store)).toEqual({ A: 1, B: 1, Poison: 1 });
    expect(await listParked(store)).toEqual([]);
    await projection.stop();
  });

  it('stops on a parked event when configured to', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('Poison'), event('B')]);
    const projection = await startProjection(store, counting(1, { poison: () => true }), { retry: fastRetry });
    await expect(projection.done).rejects.toBeInstanceOf(ProjectionStoppedError);
    expect(projection.position).toBe(1n);
    expect(await countsOf(store)).toEqual({ A: 1 });
  });

  it('inline: read model updated in the append transaction; a failing handler fails the append', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('B')]);
    let poisoned = true;
    const projection = await startProjection(store, counting(1, { poison: () => poisoned }), { mode: 'inline' });
    await projection.active;
    await waitForPosition(projection, 2n);
    const { position } = await store.append('s', [event('A')]);
    expect(await countsOf(store)).toEqual({ A: 2, B: 1 });
    await waitForPosition(projection, position, { timeout: 2000 });
    await expect(store.append('s', [event('Poison')])).rejects.toThrow('poisoned');
    expect(await store.headPosition()).toBe(3n);
    poisoned = false;
    await Promise.all([store.append('x', [event('Poison')]), store.append('y', [event('B')]), store.append('z', [event('A')])]);
    expect(await countsOf(store)).toEqual({ A: 3, B: 2, Poison: 1 });
    // Another writer without the hook (another process): its events are applied by the next hooked append.
    const other = await openPostgresStore({ url: PG_URL, schema: store.schema });
    await other.append('w', [event('A'), event('A')]);
    await other.close();
    await store.append('v', [event('B')]);
    expect(await countsOf(store)).toEqual({ A: 5, B: 3, Poison: 1 });
    await projection.stop();
  });

  it('inline rebuild: the old inline version steps aside without failing appends', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('B')]);
    const v1 = await startProjection(store, counting(1), { mode: 'inline' });
    await v1.active;
    await store.append('s', [event('A')]);
    const v2 = await startProjection(store, counting(2), { mode: 'inline' });
    await v2.active;
    await store.append('s', [event('B')]);
    await store.append('s', [event('A')]);
    expect(await countsOf(store)).toEqual({ A: 3, B: 2 });
    await v1.done.catch(() => {});
    expect(v1.status).toBe('stopped');
    await v2.stop();
  });

  it('rebuilds a new version beside the live one; queries on the view never fail nor see a partial model', async () => {
    const store = await open();
    for (let i = 0; i < 20; i++)
      await store.append(
        `s-${i}`,
        Array.from({ length: 50 }, (_, j) => event(j % 2 ? 'A' : 'B')),
      );
    const total = 1000;
    const v1 = await startProjection(store, counting(1));
    await waitForPosition(v1, BigInt(total), { timeout: 20_000 });
    const seen = new Set<number>();
    let queries = 0;
    let stop = false;
    const reader = store.sql;
    const loop = (async () => {
      while (!stop) {
        const [row] = await reader.unsafe(
          `SELECT sum(n)::int AS sum, min(weight / n) AS lo, max(weight / n) AS hi FROM ${store.schema}.type_counts`,
        );
        expect(row?.sum).toBe(total);
        expect(row?.lo).toBe(row?.hi);
        seen.add(row?.lo as number);
        queries++;
      }
    })();
    const v2 = await startProjection(store, counting(2), { batchSize: 50 });
    await v2.active;
    await sleep(50);
    stop = true;
    await loop;
    expect(seen).toEqual(new Set([1, 2]));
    expect(queries).toBeGreaterThan(5);
    await store.append('s-0', [event('A')]);
    await expect(v1.done).rejects.toThrow(/superseded/);
    await waitForPosition(v2, BigInt(total + 1));
    expect(await countsOf(store)).toEqual({ A: 501, B: 500 });
    expect((await listConsumers(store)).map((c) => [c.name, c.active])).toEqual([['counts@v2', true]]);
    await v2.stop();
  });
});

describe.skipIf(!postgresReachable)('projection crash safety on postgres', () => {
  it('keeps the read model exact across kill -9s mid-projection', { timeout: 90_000 }, async () => {
    const fresh = await freshSchemaUrl();
    const store = await openPostgresStore({ url: fresh.url });
    try {
      const types = ['A', 'B', 'C'];
      for (let i = 0; i < 40; i++) {
        await store.append(
          `s-${i % 20}`,
          Array.from({ length: 50 }, (_, j) => ({ type: types[(i + j) % 3] as string, data: { i, j } })),
        );
      }
      const head = 2000n;
      const S = store.schema;
      const checkpoint = async () => {
        const exists = await store.sql.unsafe(`SELECT to_regclass('${S}.logline_checkpoints') IS NOT NULL AS ok`);
        if (!exists[0]?.ok) return 0n;
        const [row] = await store.sql.unsafe(`SELECT position FROM ${S}.logline_checkpoints WHERE name = 'crashcount@v1'`);
        return BigInt((row?.position as string | undefined) ?? 0);
      };
      const afterKills = await crashLoop(fresh.url, checkpoint);
      expect(afterKills.some((p) => p > 0n && p < head)).toBe(true);
      expect(await checkpoint()).toBe(head);
      const rows = (q: string) => store.sql.unsafe(q).values();
      expect(await rows(`SELECT type, n FROM ${S}.type_counts ORDER BY type`)).toEqual(
        await rows(`SELECT type, count(*)::int FROM ${S}.events GROUP BY type ORDER BY type`),
      );
      expect(await rows(`SELECT stream, n, last FROM ${S}.stream_versions ORDER BY stream`)).toEqual(
        await rows(`SELECT stream_id, count(*)::int, max(stream_version) FROM ${S}.events GROUP BY stream_id ORDER BY stream_id`),
      );
    } finally {
      await store.close();
      await fresh.drop();
    }
  });
});
