/** Projection state in the PostgreSQL store's schema (filled in once the PostgreSQL store lands). */
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore } from '../core/types.js';
import type { ProjectionBackend } from './backend.js';

export const isPostgresStore = (store: EventStore): boolean => store.backend === 'postgres' && 'sql' in store;

export function createPostgresBackend(_store: EventStore): ProjectionBackend {
  throw new InvalidArgumentError('store', 'PostgreSQL projections are not available yet', 'a memory or SQLite store');
}

export async function attachPostgresInline(
  _store: EventStore,
  _backend: ProjectionBackend,
  _definition: unknown,
  _key: string,
  _advance: (position: bigint) => void,
): Promise<{ detach(): void }> {
  throw new InvalidArgumentError('store', 'PostgreSQL inline projections are not available yet', 'a SQLite store');
}
