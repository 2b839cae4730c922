/**
 * The async views (users, directory) running over a store in this thread: their positions, the
 * read-your-writes wait over them, and the users view's zero-downtime upgrade. On SQLite they run
 * on a thread of their own (views-thread.ts runs this module there); on PostgreSQL, here.
 */
import type { EventStore } from 'logline';
import {
  getLag,
  type ProjectionHandle,
  type ProjectionOptions,
  ProjectionStoppedError,
  startProjection,
  waitForPosition,
} from 'logline/projections';
import type { Dialect } from './sql.js';
import { directoryProjection, usersProjection } from './views.js';

/** What the service needs of its views, wherever they run. */
export interface Views {
  /** The users view version queries see (after an upgrade switched it: 2). */
  readonly usersVersion: number;
  /** The lowest position every view has processed: the /changes feed never reads past it. */
  position(): bigint;
  /** The physical users table of the version served now (`users_v1`, `users_v2`). */
  usersTable(): string;
  /**
   * Resolves once every view has processed `position`; PositionTimeoutError after `timeoutMs`.
   * Resolves with the users table that has it: read that one, not the `users` view, because
   * during an upgrade the view may switch to a version that has not reached `position` yet.
   */
  waitFor(position: bigint, timeoutMs: number): Promise<{ usersTable: string }>;
  /** Builds users view version 2 beside the live version 1 and switches to it; resolves once queries see it. */
  upgradeUsers(): Promise<void>;
  close(): Promise<void>;
}

export async function startViews(store: EventStore, dialect: Dialect, usersVersion: 1 | 2): Promise<Views> {
  const running: ProjectionHandle[] = [];
  const start = async (definition: Parameters<typeof startProjection>[1], options: ProjectionOptions = {}) => {
    const handle = await startProjection(store, definition, { ...options, mode: 'async' });
    // A superseded version stops on purpose; other endings show in waits and /health.
    handle.done.catch(() => {});
    running.push(handle);
    return handle;
  };
  try {
    const directory = await start(directoryProjection(dialect));
    // Version tables stay after a switch (dropOld: false), whichever process switches: requests
    // that waited on the old version read its table (see waitFor).
    // A process asked for version 1 on a store already switched to 2 serves 2 (never a stale 1).
    const active = await getLag(store, 'users').then(
      (info) => info.version,
      () => undefined,
    );
    const version = Math.max(usersVersion, active === 2 ? 2 : 1) as 1 | 2;
    let users = await start(usersProjection(dialect, version), { dropOld: false });
    let upgrade: Promise<void> | undefined;

    const tableOf = (handle: ProjectionHandle) => `users_v${handle.version}`;
    /**
     * Waits on the users version served. The old version stops soon after an upgrade switched
     * the view (Superseded): then the wait goes on with the new version.
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

    const upgradeUsers = (): Promise<void> => {
      if (users.version >= 2) return Promise.resolve();
      upgrade ??= (async () => {
        // The old tables stay (dropOld: false): requests that waited on version 1 still read it
        // while this process switches; version 2 serves every request after the assignment below.
        const next = await start(usersProjection(dialect, 2), { dropOld: false });
        await next.active;
        users = next;
      })();
      return upgrade;
    };
    // Another process switched the view to version 2 (a rolling upgrade, or a rebuild run in its
    // own process): follow it instead of serving a stale v1.
    let closing = false;
    users.done.catch(async () => {
      if (closing || users.version >= 2) return;
      const now = await getLag(store, 'users').catch(() => undefined);
      if (now?.version === 2) await upgradeUsers().catch(() => {});
    });

    return {
      get usersVersion() {
        return users.version;
      },
      position: () => (users.position < directory.position ? users.position : directory.position),
      usersTable: () => tableOf(users),
      waitFor: async (position, timeoutMs) => {
        const [usersTable] = await Promise.all([
          waitForUsers(position, timeoutMs),
          waitForPosition(directory, position, { timeout: timeoutMs }),
        ]);
        return { usersTable };
      },
      upgradeUsers,
      async close() {
        closing = true;
        for (const handle of running) await handle.stop().catch(() => {});
      },
    };
  } catch (error) {
    for (const handle of running) await handle.stop().catch(() => {});
    throw error;
  }
}
