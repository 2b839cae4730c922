/** The PostgreSQL backend (postgres.js). See docs/postgres.md. */
export {
  isConnectionError,
  openPostgresStore,
  type PostgresEventStore,
  type PostgresInlineHook,
  type PostgresStoreOptions,
} from './postgres-store.js';
export { SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION } from './schema.js';
