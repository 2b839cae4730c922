/**
 * A deliberate stop is no failure: stop() called while a consumer sleeps before retrying a failing
 * event must resolve the handle's `done` (as the handle docs say), for durable subscriptions,
 * projections (async and inline) and consumer-group workers. The event stays behind the checkpoint
 * and is retried by the next run. A failure (an event parked with onFailure 'stop') still rejects.
 */
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  defineProjection,
  type GroupWorker,
  joinGroup,
  listParked,
  ProjectionStoppedError,
  startProjection,
  startSubscription,
  waitForPosition,
} from '../../src/projections.js';
import { openSqliteStore } from '../../src/sqlite.js';
import { event, sleep } from '../helpers/collect.js';
import { backends, sqliteBackend, tempDir } from './stores.js';

/** The first retry waits a minute: a stop always lands in that sleep. */
const slowRetry = { maxAttempts: 3, initialDelayMs: 60_000, maxDelayMs: 60_000 };

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); await sleep(5)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/** How `done` settled, or 'pending' if it has not within a second. */
const settled = (done: Promise<void>) =>
  Promise.race([
    done.then(
      () => 'resolved',
      (error: unknown) => `rejected: ${String(error)}`,
    ),
    sleep(1000).then(() => 'pending'),
  ]);

const failOn = (type: string) => (e: { type: string }) => {
  if (e.type === type) throw new Error(`cannot handle ${type}`);
};

const counting = defineProjection<Database>({
  name: 'stopcount',
  tables: ['stop_counts'],
  setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('stop_counts')} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
  handlers: Object.fromEntries(
    ['A', 'Bad'].map((type) => [
      type,
      (e, { tx, table }) => {
        if (e.type === 'Bad') throw new Error('cannot handle Bad');
        tx.prepare(`INSERT INTO ${table('stop_counts')} VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`).run(e.type);
      },
    ]),
  ),
});

describe.each(backends.map((backend) => ({ name: backend.name, backend })))('stop() during a retry ($name)', ({ backend }) => {
  it('a durable subscription: done resolves, status stopped, the event is retried by the next run', async () => {
    const { store, dispose } = await backend.open();
    try {
      await store.append('s', [event('A'), event('Bad')]);
      const sub = await startSubscription(store, { name: 'stopper', handler: failOn('Bad'), retry: slowRetry });
      await until(() => sub.status === 'retrying', 'the subscription to retry');
      await sub.stop();
      expect(await settled(sub.done)).toBe('resolved');
      expect(sub.status).toBe('stopped');
      expect(sub.position).toBe(1n);
      // Nothing was parked: the next run retries the event.
      expect(await sub.listParked()).toEqual([]);
      const handled: bigint[] = [];
      const again = await startSubscription(store, { name: 'stopper', handler: (e) => void handled.push(e.position) });
      await waitForPosition(again, 2n);
      expect(handled).toEqual([2n]);
      await again.stop();
    } finally {
      await dispose();
    }
  });

  it('a consumer-group worker: done resolves', async () => {
    const { store, dispose } = await backend.open();
    let worker: GroupWorker | undefined;
    try {
      await store.append('s', [event('Bad')]);
      let failures = 0;
      worker = await joinGroup(store, {
        group: 'stopgroup',
        partitions: 2,
        retry: slowRetry,
        handler: (e) => {
          failures++;
          failOn('Bad')(e);
        },
      });
      await until(() => failures > 0, 'the worker to fail once');
      await sleep(50); // now in the sleep before the retry
      await worker.stop();
      expect(await settled(worker.done)).toBe('resolved');
      expect(failures).toBe(1);
      expect(await listParked(store, { consumer: 'stopgroup' })).toEqual([]);
    } finally {
      await worker?.stop(); // a group worker is not stopped by closing its store
      await dispose();
    }
  });

  it('a failure still rejects done: an event parked with onFailure stop', async () => {
    const { store, dispose } = await backend.open();
    try {
      await store.append('s', [event('Bad')]);
      const sub = await startSubscription(store, { name: 'failer', handler: failOn('Bad'), retry: { maxAttempts: 2, initialDelayMs: 1 } });
      await expect(sub.done).rejects.toBeInstanceOf(ProjectionStoppedError);
      expect(sub.status).toBe('stopped');
    } finally {
      await dispose();
    }
  });
});

describe('stop() during a retry of a projection (sqlite)', () => {
  it('async: done resolves', async () => {
    const { store, dispose } = await sqliteBackend.open();
    try {
      await store.append('s', [event('A'), event('Bad')]);
      const projection = await startProjection(store, counting, { retry: slowRetry });
      await until(() => projection.status === 'retrying', 'the projection to retry');
      await projection.stop();
      expect(await settled(projection.done)).toBe('resolved');
      expect(projection.status).toBe('stopped');
      expect(projection.position).toBe(1n);
    } finally {
      await dispose();
    }
  });

  it('inline, retrying an event another process wrote: done resolves', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'events.db');
    const store = await openSqliteStore({ path, synchronous: 'normal' });
    const elsewhere = await openSqliteStore({ path, synchronous: 'normal' });
    try {
      const projection = await startProjection(store, counting, { mode: 'inline', retry: slowRetry });
      await projection.active;
      await elsewhere.append('theirs', [event('Bad')]);
      // This append's hook meets the bad event first: it hands it back to the consumer, which retries it.
      await store.append('mine', [event('A')]);
      await until(() => projection.status === 'retrying', 'the projection to retry');
      await projection.stop();
      expect(await settled(projection.done)).toBe('resolved');
      expect(projection.status).toBe('stopped');
    } finally {
      await elsewhere.close();
      await store.close();
      tmp.remove();
    }
  });
});
