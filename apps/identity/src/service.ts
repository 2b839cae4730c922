/**
 * The service's state: the store (two connections: one with the inline uniqueness model for user
 * writes, one without for the rest), the async views, and the read-your-writes wait over them.
 * HTTP lives in http.ts; this file knows nothing of requests.
 */
import { type EventStore, openStore } from 'logline';
import {
  type ConsumerStatus,
  getLag,
  type ProjectionHandle,
  type ProjectionOptions,
  ProjectionStoppedError,
  startProjection,
  waitForPosition,
} from 'logline/projections';
import type { SqliteEventStore } from 'logline/sqlite';
import { type Dialect, type Queries, queriesFor } from './sql.js';
import { directoryProjection, keysProjection, usersProjection } from './views.js';

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
  /** The users view version queries see (after an upgrade switched it: 2). */
  readonly usersVersion: number;
  /** The lowest position every view has processed: the /changes feed never reads past it. */
  viewsPosition(): bigint;
  /**
   * The views this process serves and their runners' state (/health). `switching`: the users
   * view's runner stopped because another process switched to a newer version, which this one
   * is starting to follow.
   */
  views(): ViewState[];
  /** The physical users table of the version this process serves now (`users_v1`, `users_v2`). */
  usersTable(): string;
  /**
   * Resolves once every view has processed `position`; PositionTimeoutError after `timeoutMs`.
   * Resolves with the users table that has it: read that one, not the `users` view, because
   * during an upgrade the view may switch to a version that has not reached `position` yet.
   */
  waitForViews(position: bigint, timeoutMs: number): Promise<{ usersTable: string }>;
  /** Builds users view version 2 beside the live version 1 and switches to it; resolves once queries see it. */
  upgradeUsersView(): Promise<void>;
  close(): Promise<void>;
}

export interface ViewState {
  /** Checkpoint name, e.g. `users@v2`. */
  name: string;
  status: ConsumerStatus | 'switching';
  position: bigint;
  lastError?: string;
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const store = await openStore(options.store);
  const unkeyed = await openStore(options.store).catch(async (error) => {
    await store.close();
    throw error;
  });
  try {
    const queries = queriesFor(store);
    const { dialect } = queries;
    if (store.backend === 'sqlite') await eraseDeletedBytes(store as SqliteEventStore);
    const running: ProjectionHandle[] = [];
    const start = async (
      definition: Parameters<typeof startProjection>[1],
      mode: 'async' | 'inline' = 'async',
      options: ProjectionOptions = {},
    ) => {
      const handle = await startProjection(store, definition, { ...options, mode });
      // A superseded version stops on purpose; other endings are logged by the caller's checks.
      handle.done.catch(() => {});
      running.push(handle);
      return handle;
    };
    const keys = await start(keysProjection(dialect), 'inline');
    const directory = await start(directoryProjection(dialect));
    // Version tables stay after a switch (dropOld: false), whichever process switches: requests
    // that waited on the old version read its table (see waitForViews).
    // A process asked for version 1 on a store already switched to 2 serves 2 (never a stale 1).
    const active = await getLag(store, 'users').then(
      (info) => info.version,
      () => undefined,
    );
    const version = Math.max(options.usersVersion ?? 1, active === 2 ? 2 : 1) as 1 | 2;
    let users = await start(usersProjection(dialect, version), 'async', { dropOld: false });
    let upgrade: Promise<void> | undefined;

    const tableOf = (handle: ProjectionHandle) => `users_v${handle.version}`;
    /**
     * Waits on the users version this process serves. The old version stops soon after an
     * upgrade switched the view (Superseded): then the wait goes on with the new version.
     */
    const waitForUsers = async (position: bigint, timeoutMs: number): Promise<string> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const handle = users;
        try {
          await waitForPosition(handle, position, { timeout: Math.max(0, deadline - Date.now()) });
          return tableOf(handle);
        } catch (error) {
          if (!(error instanceof ProjectionStoppedError) || Date.now() >= deadline) throw error;
          // Superseded by another process: following it takes a moment (see below).
          if (users === handle) await (upgrade ?? new Promise((resolve) => setTimeout(resolve, 50)));
        }
      }
    };

    const upgradeUsersView = (): Promise<void> => {
      if (users.version >= 2) return Promise.resolve();
      upgrade ??= (async () => {
        // The old tables stay (dropOld: false): requests that waited on version 1 still read it
        // while this process switches; version 2 serves every request after the assignment below.
        // On SQLite each catch-up batch runs on this thread while requests wait: batches of 100
        // instead of 500 halved the requests' median wait during an upgrade at 20k users, for about
        // the same build time (docs/benchmarks.md). PostgreSQL's handlers wait on the network.
        const batchSize = dialect === 'sqlite' ? 100 : undefined;
        const next = await start(usersProjection(dialect, 2), 'async', { dropOld: false, ...(batchSize && { batchSize }) });
        await next.active;
        users = next;
      })();
      return upgrade;
    };
    // Another process switched the view to version 2 (a rolling upgrade, or a rebuild run in its
    // own process so this one's event loop stays free): follow it instead of serving a stale v1.
    let closing = false;
    let following = false;
    users.done.catch(async () => {
      if (closing || users.version >= 2) return;
      following = true;
      try {
        const active = await getLag(store, 'users').catch(() => undefined);
        if (active?.version === 2) await upgradeUsersView().catch(() => {});
      } finally {
        following = false;
      }
    });

    return {
      store,
      unkeyed,
      queries,
      dialect,
      get usersVersion() {
        return users.version;
      },
      viewsPosition: () => (users.position < directory.position ? users.position : directory.position),
      views: () =>
        [keys, directory, users].map((handle) => ({
          name: handle.name,
          status: handle === users && following ? 'switching' : handle.status,
          position: handle.position,
          ...(handle.lastError !== undefined && { lastError: String((handle.lastError as Error)?.message ?? handle.lastError) }),
        })),
      usersTable: () => tableOf(users),
      waitForViews: async (position, timeoutMs) => {
        const [usersTable] = await Promise.all([
          waitForUsers(position, timeoutMs),
          waitForPosition(directory, position, { timeout: timeoutMs }),
        ]);
        return { usersTable };
      },
      upgradeUsersView,
      async close() {
        closing = true;
        for (const handle of running) await handle.stop().catch(() => {});
        await unkeyed.close();
        await store.close();
      },
    };
  } catch (error) {
    await unkeyed.close().catch(() => {});
    await store.close().catch(() => {});
    throw error;
  }
}

/**
 * The views copy personal data into the store's SQLite file. When a user is forgotten they
 * overwrite or delete it, and SQLite would leave the old bytes in the page's free space or in
 * freed pages; with `secure_delete` it zeroes them, so after the next WAL checkpoint the
 * plaintext is gone from the files (test/identity/personal-data.test.ts). Set on both connections
 * that write views: the store's own (async views) and the writer's (the inline `user_keys`).
 */
async function eraseDeletedBytes(store: SqliteEventStore): Promise<void> {
  store.database.pragma('secure_delete = ON');
  await store.writerPragma('secure_delete = ON');
}
