/**
 * The service's state: the store (two connections: one with the inline uniqueness model for user
 * writes, one without for the rest), the async views (running-views.ts: on SQLite in a thread of
 * their own, views-thread.ts), and the read-your-writes wait over them. HTTP lives in http.ts;
 * this file knows nothing of requests.
 */
import { type EventStore, openStore } from 'logline';
import { type ProjectionHandle, startProjection } from 'logline/projections';
import type { SqliteEventStore } from 'logline/sqlite';
import { startViews, type Views } from './running-views.js';
import { type Dialect, type Queries, queriesFor } from './sql.js';
import { keysProjection } from './views.js';
import { startViewsThread } from './views-thread.js';

export interface ServiceOptions {
  /** Any SQL store URL: `sqlite:./file.db`, `postgres://…`. */
  store: string;
  /** The users view version this process builds and serves (2 adds displayName). Default 1. */
  usersVersion?: 1 | 2;
}

export interface Service {
  /** The store with the inline uniqueness model attached: writes that can claim a username or email go through it. */
  store: EventStore;
  /**
   * A second connection to the same store, without the inline hook: writes that claim no
   * username or email (name changes, deactivations, groups, memberships) skip the hook's
   * per-append cost (on PostgreSQL a few round trips each). The hook applies what it missed at
   * the next claim, before that append's own events (projections.md, inline projections).
   */
  unkeyed: EventStore;
  queries: Queries;
  dialect: Dialect;
  /** The async views: where they are, read-your-writes waits, the users view upgrade. */
  views: Views;
  close(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const store = await openStore(options.store);
  const unkeyed = await openStore(options.store).catch(async (error) => {
    await store.close();
    throw error;
  });
  let keys: ProjectionHandle | undefined;
  try {
    const queries = queriesFor(store);
    const { dialect } = queries;
    if (store.backend === 'sqlite') await eraseDeletedBytes(store as SqliteEventStore);
    keys = await startProjection(store, keysProjection(dialect), { mode: 'inline' });
    const usersVersion = options.usersVersion ?? 1;
    const views =
      store.backend === 'sqlite'
        ? await startViewsThread({ store: options.store, usersVersion })
        : await startViews(store, dialect, usersVersion);
    return {
      store,
      unkeyed,
      queries,
      dialect,
      views,
      async close() {
        await views.close().catch(() => {});
        await keys?.stop().catch(() => {});
        await unkeyed.close();
        await store.close();
      },
    };
  } catch (error) {
    await keys?.stop().catch(() => {});
    await unkeyed.close().catch(() => {});
    await store.close().catch(() => {});
    throw error;
  }
}

/**
 * The views copy personal data into the store's SQLite file. When a user is forgotten they
 * overwrite or delete it, and SQLite would leave the old bytes in the page's free space or in
 * freed pages; with `secure_delete` it zeroes them, so after the next WAL checkpoint the
 * plaintext is gone from the files (test/identity/personal-data.test.ts). Set on every connection
 * that writes views: the store's own and its writer thread's (the inline `user_keys`), and the
 * views thread's (views-worker.ts).
 */
async function eraseDeletedBytes(store: SqliteEventStore): Promise<void> {
  store.database.pragma('secure_delete = ON');
  await store.writerPragma('secure_delete = ON');
}
