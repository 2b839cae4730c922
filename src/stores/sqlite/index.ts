/** The SQLite backend (better-sqlite3). See docs/store.md. */
export {
  openSqliteStore,
  type SqliteEventStore,
  type SqliteInlineHook,
  type SqliteStoreOptions,
  type SqliteSynchronous,
} from './store.js';
