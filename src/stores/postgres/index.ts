/** The PostgreSQL backend (postgres.js). See docs/postgres.md. */
export { arrayLiteral } from './arrays.js';
export { SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION } from './schema.js';
export {
  openPostgresStore,
  type PostgresEventStore,
  type PostgresInlineHook,
  type PostgresStoreOptions,
} from './store.js';
export { isConnectionError } from './watchdog.js';
