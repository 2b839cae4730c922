/**
 * The views thread's body (see views-thread.ts): opens its own connection to the store, runs the
 * views there (running-views.ts) and posts where they are each time they move.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from 'logline';
import type { SqliteEventStore } from 'logline/sqlite';
import { startViews, type Views } from './running-views.js';
import { queriesFor } from './sql.js';
import type { FromThread, ToThread, ViewsThreadData } from './views-thread.js';

const port = parentPort as NonNullable<typeof parentPort>;
const { store: url, usersVersion } = workerData as ViewsThreadData;
const post = (message: FromThread) => port.postMessage(message);
const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

const store = await openStore(url);
let views: Views;
try {
  // The views copy personal data: forgotten values are overwritten with zeroes (see service.ts).
  if (store.backend === 'sqlite') (store as SqliteEventStore).database.pragma('secure_delete = ON');
  views = await startViews(store, queriesFor(store).dialect, usersVersion);
} catch (error) {
  post({ failed: `the views did not start: ${reason(error)}` });
  await store.close().catch(() => {});
  port.close();
  throw error;
}

/**
 * Keeps the WAL from growing: with this thread's connection and the store's writer thread both
 * committing, SQLite's automatic (passive) checkpoints seldom find a moment where the whole log is
 * copied back, and only then does the next write start it over. Four times a second this thread looks
 * at the log; past WAL_LIMIT_PAGES it checkpoints with RESTART, which waits for readers and holds
 * writers back (both wait in their threads, not on the service's event loop) until the next write
 * can start the log over.
 */
const WAL_LIMIT_PAGES = 2000;
const walTimer =
  store.backend === 'sqlite'
    ? setInterval(() => {
        const db = (store as SqliteEventStore).database;
        const [status] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
        if ((status?.log ?? 0) > WAL_LIMIT_PAGES) db.pragma('wal_checkpoint(RESTART)');
      }, 250)
    : undefined;

const report = () => post({ moved: { usersVersion: views.usersVersion, position: views.position() } });
let closing = false;
report();
// Each time the slower view moves, the service hears of it.
void (async () => {
  while (!closing) {
    try {
      await views.waitFor(views.position() + 1n, 60_000);
      report();
    } catch (error) {
      if ((error as { code?: string }).code === 'PositionTimeout') continue;
      if (!closing) post({ failed: reason(error) });
      return;
    }
  }
})();

port.on('message', async (message: ToThread) => {
  if ('upgrade' in message) {
    await views.upgradeUsers().then(
      () => {
        report();
        post({ upgraded: true });
      },
      (error) => post({ upgradeFailed: reason(error) }),
    );
  } else {
    closing = true;
    clearInterval(walTimer);
    await views.close();
    await store.close();
    // Ends this thread, not the process. Left to itself the thread stayed alive after the store
    // closed, held by a message port (not the parent port: unref and removing its listener did not help).
    process.exit(0);
  }
});
