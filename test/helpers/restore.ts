/**
 * Simulates restoring an older backup of a store (or failing over to a replica that lags): the
 * events after `head` are gone, and the next append reuses their positions. SQLite and
 * PostgreSQL only; the memory store cannot be restored.
 */
import type { EventStore } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import type { SqliteEventStore } from '../../src/sqlite.js';

export async function restoreTo(store: EventStore, head: bigint): Promise<void> {
  if (store.backend === 'sqlite') {
    (store as SqliteEventStore).database.prepare('DELETE FROM events WHERE position > ?').run(head);
    return;
  }
  if (store.backend !== 'postgres') throw new Error(`a ${store.backend} store cannot be restored`);
  const { sql, schema } = store as PostgresEventStore;
  await sql.begin(async (tx) => {
    await tx`DELETE FROM ${tx(schema)}.events WHERE position > ${head.toString()}`;
    await tx`DELETE FROM ${tx(schema)}.streams`;
    await tx`INSERT INTO ${tx(schema)}.streams (stream_id, version, last_position, last_recorded_at)
             SELECT stream_id, max(stream_version), max(position), max(recorded_at) FROM ${tx(schema)}.events GROUP BY stream_id`;
  });
}
