/** The PostgreSQL backend (postgres.js). See docs/postgres.md. */

export { SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION } from './schema.js';
export {
  isConnectionError,
  openPostgresStore,
  type PostgresEventStore,
  type PostgresInlineHook,
  type PostgresStoreOptions,
} from './store.js';
