/**
 * A durable consumer whose checkpoint is beyond the store's head (the store was restored from an
 * older backup) stops with PositionBeyondHead, live or at its next start, and never handles the
 * events written after the restore as if it had seen their positions already.
 */
import type { Database } from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { PositionBeyondHeadError, type RecordedEvent } from '../../src/index.js';
import { defineProjection, startProjection, startSubscription, waitForPosition } from '../../src/projections.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { event, sleep } from '../helpers/collect.js';
import { restoreTo } from '../helpers/restore.js';
import { backends, sqliteBackend, type TestStore } from './stores.js';

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

for (const backend of backends.filter((b) => b.name !== 'memory')) {
  describe(`a checkpoint beyond the head on ${backend.name}`, () => {
    let opened: TestStore[] = [];
    afterEach(async () => {
      for (const t of opened) await t.dispose();
      opened = [];
    });

    it('stops a live subscription and a restarted one with PositionBeyondHead', async () => {
      const t = await backend.open();
      opened.push(t);
      const { store } = t;
      const handled: RecordedEvent[] = [];
      const handler = (e: RecordedEvent) => void handled.push(e);
      await store.append('order-1', [event('A'), event('B'), event('C'), event('D')]);
      const live = await startSubscription(store, { name: 'mails', handler });
      await until(() => handled.length === 4);
      await restoreTo(store, 2n);
      await store.append('order-2', [event('AfterRestore')]);
      await live.done.catch(() => {});
      expect(live.status).toBe('failed');
      expect(live.lastError).toBeInstanceOf(PositionBeyondHeadError);

      // Its stored checkpoint (4) is beyond the restored head (3): the restart fails the same way.
      const restarted = await startSubscription(store, { name: 'mails', handler });
      await restarted.done.catch(() => {});
      expect(restarted.status).toBe('failed');
      expect((restarted.lastError as PositionBeyondHeadError).details).toEqual({ position: '4', head: '3' });
      expect(handled.map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
    });
  });
}

describe('a projection checkpoint beyond the head on sqlite', () => {
  it('stops the projection with PositionBeyondHead at its next start; the read model keeps what it had', async () => {
    const t = await sqliteBackend.open();
    const store = t.store as SqliteEventStore;
    try {
      const counting = defineProjection<Database>({
        name: 'counts',
        tables: ['seen'],
        setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('seen')} (position INTEGER PRIMARY KEY, type TEXT NOT NULL)`),
        handleBatch(events, { tx, table }) {
          const insert = tx.prepare(`INSERT INTO ${table('seen')} VALUES (?, ?)`);
          for (const e of events) insert.run(e.position, e.type);
        },
      });
      await store.append('order-1', [event('A'), event('B'), event('C'), event('D')]);
      const first = await startProjection(store, counting);
      await waitForPosition(first, 4n);
      await first.stop();
      await restoreTo(store, 2n);
      await store.append('order-2', [event('AfterRestore')]);
      const restarted = await startProjection(store, counting);
      await restarted.done.catch(() => {});
      expect(restarted.status).toBe('failed');
      expect(restarted.lastError).toBeInstanceOf(PositionBeyondHeadError);
      expect(store.database.prepare('SELECT type FROM seen_v1 ORDER BY position').pluck().all()).toEqual(['A', 'B', 'C', 'D']);
    } finally {
      await t.dispose();
    }
  });
});
