/** PostgreSQL store: being built (issue 4). */
import { InvalidStoreUrlError } from '../../core/errors.js';
import type { EventStore, StoreLimits } from '../../core/types.js';

export interface PostgresStoreOptions {
  url: string;
  limits?: Partial<StoreLimits>;
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<EventStore> {
  throw new InvalidStoreUrlError(options.url, 'the PostgreSQL backend is not built yet');
}
