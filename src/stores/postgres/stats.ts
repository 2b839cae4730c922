/**
 * stats() without a count(*) over the events and streams tables on every call (/metrics and
 * /v1/stats call it on each request; a full count reads every row, seconds at tens of millions).
 * Events are never deleted and `append_batch` makes positions visible strictly in order, in every
 * process, so the counts are kept by adding the events after the last position counted (a range
 * of the primary key); a stream is counted by its version-1 event. The first call on a large
 * store counts in slices, so no single query runs long. The same approach as the SQLite store's.
 */
import type { Sql } from 'postgres';
import type { StoreStats } from '../../core/types.js';

/** Events counted per query while catching up. */
const SLICE = 100_000;

/** Returns a stats() for the store in `schema`. */
export function incrementalStats(sql: Sql, schema: string): () => Promise<StoreStats> {
  const S = sql(schema);
  const tally = { position: 0n, events: 0, streams: 0 };
  let tallied: Promise<void> = Promise.resolve();

  async function countNewEvents(): Promise<void> {
    for (;;) {
      const [row] = await sql<{ events: number; streams: number; last: string | null }[]>`
        SELECT count(*)::int AS events, count(*) FILTER (WHERE stream_version = 1)::int AS streams, max(position)::text AS last
        FROM (SELECT position, stream_version FROM ${S}.events WHERE position > ${String(tally.position)}
              ORDER BY position LIMIT ${SLICE}) AS slice`;
      if (!row || row.events === 0 || row.last === null) return;
      tally.position = BigInt(row.last);
      tally.events += row.events;
      tally.streams += row.streams;
      if (row.events < SLICE) return;
    }
  }

  return async () => {
    // Chained, so a call never joins a count that started before its caller's last append.
    const counted = tallied.then(countNewEvents);
    tallied = counted.catch(() => {});
    await counted;
    // Counted up to here at least; the head may be further on (appends since): report what was counted.
    return { events: tally.events, streams: tally.streams, headPosition: tally.position };
  };
}
