import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  defineProjection,
  getLag,
  listConsumers,
  listParked,
  PositionTimeoutError,
  ProjectionStoppedError,
  replayParked,
  startProjection,
  waitForPosition,
} from '../../src/projections.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/sqlite.js';
import { event, sleep } from '../helpers/collect.js';
import { memoryBackend, sqliteBackend, type TestStore, tempDir } from './stores.js';

const fastRetry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 };

/** Counts events per type and per stream into SQL tables. */
const counting = (version = 1, options: { poison?: () => boolean } = {}) =>
  defineProjection<Database>({
    name: 'counts',
    version,
    tables: ['type_counts'],
    setup: ({ tx, table }) =>
      tx.exec(`CREATE TABLE ${table('type_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL, weight INTEGER NOT NULL)`),
    handlers: Object.fromEntries(
      ['A', 'B', 'Poison'].map((type) => [
        type,
        (e, { tx, table }) => {
          tx.prepare(
            `INSERT INTO ${table('type_counts')} (type, n, weight) VALUES (?, 1, ?) ON CONFLICT (type) DO UPDATE SET n = n + 1, weight = weight + excluded.weight`,
          ).run(e.type, version);
          // Throwing after the write: the write must roll back with the transaction.
          if (e.type === 'Poison' && options.poison?.()) throw new Error('poisoned');
        },
      ]),
    ),
  });

const countsOf = (db: Database, table = 'type_counts') =>
  Object.fromEntries((db.prepare(`SELECT type, n FROM ${table} ORDER BY type`).raw().all() as [string, number][]).map(([t, n]) => [t, n]));

describe('projections on sqlite', () => {
  let opened: TestStore[] = [];
  const open = async () => {
    const t = await sqliteBackend.open();
    opened.push(t);
    return t.store as SqliteEventStore;
  };
  afterEach(async () => {
    for (const t of opened) await t.dispose();
    opened = [];
  });

  it('projects into a SQL table in the same database, with the checkpoint, and waits for positions', async () => {
    const store = await open();
    await store.append('s-1', [event('A'), event('B'), event('A')]);
    const projection = await startProjection(store, counting());
    await waitForPosition(projection, 3n);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1 });
    const { position } = await store.append('s-2', [event('B'), event('Other')]);
    await waitForPosition(projection, position);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 2 });
    expect(store.database.prepare("SELECT position FROM logline_checkpoints WHERE name = 'counts@v1'").pluck().get()).toBe(5);
    await expect(waitForPosition(projection, 99n, { timeout: 20 })).rejects.toBeInstanceOf(PositionTimeoutError);
    await projection.stop();
    // Restart: nothing is applied twice.
    const again = await startProjection(store, counting());
    await store.append('s-3', [event('A')]);
    await waitForPosition(again, 6n);
    expect(countsOf(store.database)).toEqual({ A: 3, B: 2 });
    await again.stop();
  });

  it("projects only its category's events when given one, and refuses a category with a '-'", async () => {
    const store = await open();
    await store.append('cart-1', [event('A'), event('B')]);
    await store.append('carts-1', [event('A')]);
    await store.append('cart', [event('A')]);
    const { position } = await store.append('cart-2-x', [event('A')]);
    const definition = { ...counting(), name: 'cart_counts', category: 'cart' };
    const projection = await startProjection(store, defineProjection<Database>(definition));
    await waitForPosition(projection, position);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1 });
    await projection.stop();
    expect(() => defineProjection<Database>({ ...definition, category: 'cart-1' })).toThrow(InvalidArgumentError);
  });

  it('two runners of one projection (two connections) never apply an event twice', async () => {
    const store = await open();
    const second = await openSqliteStore({ path: store.path, synchronous: 'normal' });
    const runners = [
      await startProjection(store, counting(), { batchSize: 7 }),
      await startProjection(second, counting(), { batchSize: 3 }),
    ];
    for (let i = 0; i < 30; i++) await (i % 2 ? store : second).append(`s-${i % 5}`, [event('A'), event('B'), event('A')]);
    for (const runner of runners) await waitForPosition(runner, 90n, { timeout: 10_000 });
    expect(countsOf(store.database)).toEqual({ A: 60, B: 30 });
    for (const runner of runners) await runner.stop();
    await second.close();
  });

  it("commits read models without fsync but leaves the store's own synchronous setting as it was", async () => {
    const tmp = tempDir();
    const store = await openSqliteStore({ path: join(tmp.dir, 'full.db'), synchronous: 'full' });
    await store.append('s', [event('A'), event('B')]);
    const projection = await startProjection(store, counting());
    await waitForPosition(projection, 2n);
    expect(store.database.pragma('synchronous', { simple: true })).toBe(2);
    await store.append('s', [event('A')]);
    await waitForPosition(projection, 3n);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1 });
    expect(store.database.pragma('synchronous', { simple: true })).toBe(2);
    await projection.stop();
    await store.close();
    tmp.remove();
  });

  it('rolls back a failing event, retries it, parks it with error and stack, skips on, and replays it', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('Poison'), event('B')]);
    let poisoned = true;
    const projection = await startProjection(store, counting(1, { poison: () => poisoned }), {
      retry: fastRetry,
      onFailure: 'skip',
      batchSize: 10,
    });
    await waitForPosition(projection, 3n);
    expect(countsOf(store.database)).toEqual({ A: 1, B: 1 });
    const parked = await projection.listParked();
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ consumer: 'counts@v1', position: 2n, attempts: 3, error: 'poisoned' });
    expect(parked[0]?.stack).toMatch(/poisoned\n\s+at /);
    poisoned = false;
    expect(await replayParked(projection)).toEqual({ replayed: 1, failed: [] });
    expect(countsOf(store.database)).toEqual({ A: 1, B: 1, Poison: 1 });
    expect(await listParked(store)).toEqual([]);
    await projection.stop();
  });

  it("stops on a parked event with onFailure 'stop'; its checkpoint stays before it", async () => {
    const store = await open();
    await store.append('s', [event('A'), event('Poison'), event('B')]);
    const projection = await startProjection(store, counting(1, { poison: () => true }), { retry: fastRetry });
    await expect(projection.done).rejects.toBeInstanceOf(ProjectionStoppedError);
    expect(countsOf(store.database)).toEqual({ A: 1 });
    expect((await getLag(store, 'counts')).checkpoint).toBe(1n);
    // A replay that still fails reports it and keeps the event parked.
    const replay = await replayParked(projection);
    expect(replay.replayed).toBe(0);
    expect(replay.failed[0]?.error).toMatchObject({ message: 'poisoned' });
    expect(await listParked(store)).toHaveLength(1);
  });

  it('inline: the read model changes in the append transaction, and a failing handler fails the append', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('B')]);
    let poisoned = true;
    const projection = await startProjection(store, counting(1, { poison: () => poisoned }), { mode: 'inline' });
    await projection.active;
    await waitForPosition(projection, 2n);
    expect(countsOf(store.database)).toEqual({ A: 1, B: 1 });
    // Visible as soon as append resolves: no waiting.
    const { position } = await store.append('s', [event('A')]);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1 });
    await waitForPosition(projection, position, { timeout: 1000 });
    expect(projection.status).toBe('live');
    await expect(store.append('s', [event('Poison')])).rejects.toThrow('poisoned');
    expect(await store.headPosition()).toBe(3n);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1 });
    poisoned = false;
    await store.append('s', [event('Poison')]);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1, Poison: 1 });
    await projection.stop();
    // Stopped: appends no longer touch the read model; a restart catches up from the checkpoint.
    await store.append('s', [event('B')]);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 1, Poison: 1 });
    const again = await startProjection(store, counting(1), { mode: 'inline' });
    await waitForPosition(again, 5n);
    expect(countsOf(store.database)).toEqual({ A: 2, B: 2, Poison: 1 });
    // Another writer without the hook (another process): its events are applied by the next hooked append.
    const other = await openSqliteStore({ path: store.path, synchronous: 'normal' });
    await other.append('t', [event('A'), event('A')]);
    await other.close();
    await store.append('s', [event('B')]);
    expect(countsOf(store.database)).toEqual({ A: 4, B: 3, Poison: 1 });
    await again.stop();
  });

  it('inline rebuild: the old inline version steps aside without failing appends', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('B')]);
    const v1 = await startProjection(store, counting(1), { mode: 'inline' });
    await v1.active;
    await store.append('s', [event('A')]);
    const v2 = await startProjection(store, counting(2), { mode: 'inline' });
    await v2.active;
    // v1's hook is still registered until it notices; appends must not fail because of it.
    await store.append('s', [event('B')]);
    await store.append('s', [event('A')]);
    expect(countsOf(store.database)).toEqual({ A: 3, B: 2 });
    expect(store.database.prepare('SELECT min(weight / n), max(weight / n) FROM type_counts').raw().get()).toEqual([2, 2]);
    await v1.done.catch(() => {});
    expect(v1.status).toBe('stopped');
    await v2.stop();
  });

  it('rebuilds a new version beside the live one; queries on the view never fail nor see a partial model', async () => {
    const store = await open();
    for (let i = 0; i < 40; i++)
      await store.append(
        `s-${i}`,
        Array.from({ length: 50 }, (_, j) => event(j % 2 ? 'A' : 'B')),
      );
    const total = 2000;
    const v1 = await startProjection(store, counting(1));
    await waitForPosition(v1, BigInt(total));
    // Queries read the view `type_counts`, whichever version it points at.
    const query = store.database.prepare('SELECT sum(n), min(weight / n), max(weight / n) FROM type_counts').raw();
    const seen = new Set<number>();
    let queries = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const [sum, minWeight, maxWeight] = query.get() as [number, number, number];
        // Complete, and from one version only.
        expect(sum).toBe(total);
        expect(minWeight).toBe(maxWeight);
        seen.add(minWeight);
        queries++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const v2 = await startProjection(store, counting(2), { batchSize: 50 });
    await v2.active;
    // The rebuild (40 batches) let the queries run between its batches, not only after it.
    const duringRebuild = queries;
    await sleep(20);
    stop = true;
    await loop;
    expect(seen).toEqual(new Set([1, 2]));
    expect(duringRebuild).toBeGreaterThanOrEqual(20);
    // v1 notices it was superseded; its tables are gone.
    await store.append('s-0', [event('A')]);
    await expect(v1.done).rejects.toThrow(/superseded/);
    expect(store.database.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'type_counts_v1'").pluck().get()).toBe(0);
    await waitForPosition(v2, BigInt(total + 1));
    expect(countsOf(store.database)).toEqual({ A: 1001, B: 1000 });
    const infos = await listConsumers(store);
    expect(infos.map((i) => [i.name, i.active])).toEqual([['counts@v2', true]]);
    // An old process starting version 1 now is refused.
    await expect(startProjection(store, counting(1))).rejects.toBeInstanceOf(ProjectionStoppedError);
    await v2.stop();
  });

  it('handleBatch: one set-based call per batch; a failing batch is narrowed down to the event at fault', async () => {
    const store = await open();
    await store.append('s', [event('A'), event('B'), event('Poison'), event('A'), event('C')]);
    const batchSizes: number[] = [];
    const projection = await startProjection(
      store,
      defineProjection<Database>({
        name: 'batched',
        tables: ['totals'],
        types: ['A', 'B', 'Poison'],
        setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('totals')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
        handleBatch(events, { tx, table }) {
          batchSizes.push(events.length);
          const counts = new Map<string, number>();
          for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
          const upsert = tx.prepare(`INSERT INTO ${table('totals')} VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET n = n + excluded.n`);
          for (const [type, n] of counts) upsert.run(type, n);
          if (counts.has('Poison')) throw new Error('poison in batch');
        },
      }),
      { retry: fastRetry, onFailure: 'skip' },
    );
    await waitForPosition(projection, 5n);
    expect(countsOf(store.database, 'totals')).toEqual({ A: 2, B: 1 });
    expect(batchSizes[0]).toBe(4); // C is not wanted
    expect((await projection.listParked()).map((p) => p.position)).toEqual([3n]);
    await projection.stop();
  });

  it('rejects bad definitions and options with typed errors', async () => {
    const store = await open();
    const handlers = { A: () => {} };
    expect(() => defineProjection({ name: '1bad', handlers })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', version: 0, handlers })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', handlers: {} })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', handlers, handleBatch: () => {} })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', tables: ['a;drop'], handlers })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', tables: ['events'], handlers })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', tables: ['logline_checkpoints'], handlers })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'ok', handlers: { A: 1 as never } })).toThrow(InvalidArgumentError);
    const ok = defineProjection({ name: 'ok', handlers });
    await expect(startProjection(store, ok, { mode: 'sideways' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(startProjection(store, ok, { batchSize: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    // An async handler cannot run inside a synchronous SQLite transaction: parked with a clear reason.
    await store.append('s', [event('A')]);
    const asyncOne = await startProjection(store, defineProjection({ name: 'asyncy', handlers: { A: async () => {} } }), {
      retry: fastRetry,
    });
    await expect(asyncOne.done).rejects.toBeInstanceOf(ProjectionStoppedError);
    expect((await asyncOne.listParked())[0]?.error).toMatch(/synchronous/);
  });
});

describe('projections on memory', () => {
  it('runs handlers with an undefined transaction; at-least-once, in order', async () => {
    const { store, dispose } = await memoryBackend.open();
    const totals = new Map<string, number>();
    const projection = await startProjection(
      store,
      defineProjection({
        name: 'totals',
        handlers: {
          Deposited: (e, ctx) => {
            expect(ctx.tx).toBeUndefined();
            const { amount } = e.data as { amount: number };
            totals.set(e.streamId, (totals.get(e.streamId) ?? 0) + amount);
          },
        },
      }),
    );
    await store.append('acc-1', [event('Deposited', { amount: 5 }), event('Deposited', { amount: 7 })]);
    const { position } = await store.append('acc-2', [event('Deposited', { amount: 1 }), event('Opened')]);
    await waitForPosition(projection, position);
    expect(Object.fromEntries(totals)).toEqual({ 'acc-1': 12, 'acc-2': 1 });
    expect(await getLag(store, 'totals')).toMatchObject({ name: 'totals@v1', active: true, lagPositions: 0 });
    await expect(
      startProjection(store, defineProjection({ name: 'x', handlers: { A: () => {} } }), { mode: 'inline' }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await projection.stop();
    await dispose();
  });
});
