export {
  openSqliteStore,
  type SqliteEventStore,
  type SqliteInlineHook,
  type SqliteStoreOptions,
  type SqliteSynchronous,
} from './stores/sqlite/index.js';
