export {
  arrayLiteral,
  openPostgresStore,
  POSTGRES_SCHEMA_VERSION,
  type PostgresEventStore,
  type PostgresInlineHook,
  type PostgresStoreOptions,
} from './stores/postgres/index.js';
