/**
 * Parking a failing event is a store write like any other (the parked row and, with onFailure
 * 'skip', the checkpoint past it, in one transaction). If that write fails for a while, the
 * projection must wait it out and retry it, not end 'failed' for good: a trigger on the parked
 * events table refuses this projection's rows while it is armed. Once it is lifted the projection
 * is live again, the event is parked exactly once, and the events after it are applied.
 */
import type { Database } from 'better-sqlite3';
import type postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import {
  defineProjection,
  type GroupWorker,
  joinGroup,
  listParked,
  type ProjectionHandle,
  startProjection,
  waitForPosition,
} from '../../src/projections.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { event, sleep } from '../helpers/collect.js';
import { type Backend, postgresBackend, postgresReachable, sqliteBackend } from './stores.js';

const INJECTED = 'injected: the park write failed';

/** The write to refuse: a table, and which of its rows (a condition on NEW). */
interface Fault {
  table: 'logline_parked' | 'logline_checkpoints';
  when: string;
}

/** The park step's two writes: the parked row, and the checkpoint moved past the event (onFailure 'skip'). */
const faultsOf = (consumer: string, checkpoint: string): Array<{ what: string; fault: Fault }> => [
  { what: 'the parked row', fault: { table: 'logline_parked', when: `NEW.consumer = '${consumer}'` } },
  // Armed once the event is failing: until then each failed attempt writes no checkpoint.
  { what: 'the checkpoint past it', fault: { table: 'logline_checkpoints', when: `NEW.name LIKE '${checkpoint}'` } },
];
const options = { onFailure: 'skip' as const, retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 20 } };

interface Target {
  backend: Backend;
  start(store: EventStore): Promise<ProjectionHandle>;
  /** Makes every write of `fault` fail; returns the function that disarms it. */
  failWrites(store: EventStore, fault: Fault): Promise<() => Promise<void>>;
  handled(store: EventStore): Promise<number[]>;
}

const sqlite: Target = {
  backend: sqliteBackend,
  start: (store) =>
    startProjection(
      store,
      defineProjection<Database>({
        name: 'parkfault',
        tables: ['handled'],
        setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('handled')} (position INTEGER PRIMARY KEY)`),
        handlers: {
          Ok: (e, { tx, table }) => void tx.prepare(`INSERT INTO ${table('handled')} VALUES (?)`).run(e.position),
          Bad: () => {
            throw new Error('cannot handle Bad');
          },
        },
      }),
      options,
    ),
  async failWrites(store, { table, when }) {
    const db = (store as SqliteEventStore).database;
    for (const op of ['INSERT', 'UPDATE']) {
      db.exec(`CREATE TRIGGER fail_${op} BEFORE ${op} ON ${table} WHEN ${when} BEGIN SELECT RAISE(ABORT, '${INJECTED}'); END`);
    }
    return async () => {
      for (const op of ['INSERT', 'UPDATE']) db.exec(`DROP TRIGGER fail_${op}`);
    };
  },
  async handled(store) {
    return (store as SqliteEventStore).database.prepare('SELECT position FROM handled ORDER BY position').pluck().all() as number[];
  },
};

const pg: Target = {
  backend: postgresBackend,
  start: (store) =>
    startProjection(
      store,
      defineProjection<postgres.TransactionSql>({
        name: 'parkfault',
        tables: ['handled'],
        setup: async ({ tx, table }) => {
          await tx.unsafe(`CREATE TABLE ${table('handled')} (position bigint PRIMARY KEY)`);
        },
        handlers: {
          Ok: async (e, { tx, table }) => {
            await tx.unsafe(`INSERT INTO ${table('handled')} VALUES ($1)`, [String(e.position)]);
          },
          Bad: () => {
            throw new Error('cannot handle Bad');
          },
        },
      }),
      options,
    ),
  async failWrites(store, { table, when }) {
    const { sql, schema } = store as PostgresEventStore;
    await sql.unsafe(`CREATE OR REPLACE FUNCTION ${schema}.fail_write() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION '${INJECTED}'; END $$`);
    await sql.unsafe(`CREATE TRIGGER fail_write BEFORE INSERT OR UPDATE ON ${schema}.${table}
                      FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION ${schema}.fail_write()`);
    return async () => {
      await sql.unsafe(`DROP TRIGGER fail_write ON ${schema}.${table}`);
    };
  },
  async handled(store) {
    const { sql, schema } = store as PostgresEventStore;
    return (await sql.unsafe(`SELECT position FROM ${schema}.handled ORDER BY position`).values()).map(([p]) => Number(p));
  },
};

const targets = [sqlite, ...(postgresReachable ? [pg] : [])];

async function injectedFailureSeen(lastError: () => unknown): Promise<void> {
  for (const deadline = Date.now() + 10_000; !String(lastError()).includes(INJECTED); await sleep(5)) {
    if (Date.now() > deadline) throw new Error(`the injected failure never happened (lastError: ${String(lastError())})`);
  }
}

const cases = targets.flatMap((target) =>
  faultsOf('parkfault@v1', 'parkfault@v1').map(({ what, fault }) => ({ name: target.backend.name, what, fault, target })),
);

describe.each(cases)('a failing park write ($name, $what)', ({ target, fault }) => {
  it('is retried until it succeeds: the event is parked once and the projection goes on', async () => {
    const { store, dispose } = await target.backend.open();
    try {
      await store.append('s', [event('Ok')]);
      const projection = await target.start(store);
      await waitForPosition(projection, 1n);
      const disarm = await target.failWrites(store, fault);
      await store.append('s', [event('Bad'), event('Ok')]);
      await injectedFailureSeen(() => projection.lastError);
      await sleep(50);
      expect(projection.status).toBe('retrying');
      expect(projection.position).toBe(1n);
      await disarm();
      await waitForPosition(projection, 3n, { timeout: 10_000 });
      const parked = await projection.listParked();
      expect(parked.map((p) => [p.event.position, p.error])).toEqual([[2n, 'cannot handle Bad']]);
      expect(await target.handled(store)).toEqual([1, 3]);
      for (const deadline = Date.now() + 5000; projection.status !== 'live'; await sleep(5)) {
        if (Date.now() > deadline) throw new Error(`the projection is ${projection.status}, not live`);
      }
      // And it goes on with what comes next.
      const { position } = await store.append('s', [event('Ok')]);
      await waitForPosition(projection, position);
      expect(await target.handled(store)).toEqual([1, 3, 4]);
      await projection.stop();
      expect(await projection.done.then(() => 'resolved')).toBe('resolved');
    } finally {
      await dispose();
    }
  });
});

const groupCases = targets.flatMap((target) =>
  faultsOf('parkgroup', 'parkgroup#%').map(({ what, fault }) => ({ name: target.backend.name, what, fault, backend: target.backend })),
);

describe.each(groupCases)('a failing park write of a group worker ($name, $what)', ({ backend, fault }) => {
  it('is retried until it succeeds: the event is parked once and the worker goes on', async () => {
    const { store, dispose } = await backend.open();
    let worker: GroupWorker | undefined;
    try {
      const handled: bigint[] = [];
      let failedOnce = false;
      worker = await joinGroup(store, {
        group: 'parkgroup',
        partitions: 1,
        ...options,
        handler: (e) => {
          if (e.type === 'Bad') {
            failedOnce = true;
            throw new Error('cannot handle Bad');
          }
          handled.push(e.position);
        },
      });
      const target = targets.find((t) => t.backend === backend) as Target;
      const disarm = await target.failWrites(store, fault);
      await store.append('s', [event('Bad'), event('Ok')]);
      for (const deadline = Date.now() + 10_000; !failedOnce; await sleep(5)) {
        if (Date.now() > deadline) throw new Error('the handler was never called');
      }
      // Retries of the event, then of its parking, which the trigger refuses for a while.
      await sleep(300);
      expect(handled).toEqual([]);
      await disarm();
      for (const deadline = Date.now() + 10_000; handled.length === 0; await sleep(5)) {
        if (Date.now() > deadline) throw new Error('the worker never went on');
      }
      expect(handled).toEqual([2n]);
      const parked = await listParked(store, { consumer: 'parkgroup' });
      expect(parked.map((p) => p.event.position)).toEqual([1n]);
      await worker.stop();
      expect(await worker.done.then(() => 'resolved')).toBe('resolved');
    } finally {
      await worker?.stop(); // a group worker is not stopped by closing its store
      await dispose();
    }
  });
});
