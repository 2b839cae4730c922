/** Mapping between rows of the events table and RecordedEvent (the store and its read models share it). */
import { SEALED } from '../../core/personal-data.js';
import type { JsonObject, JsonValue, RecordedEvent } from '../../core/types.js';

/** The largest value of an `integer` column (stream versions). */
export const MAX_INT = 2_147_483_647;

/** One row of the events table as read with `.values()` and COLUMNS (read models reuse both). */
export type Row = [string, string, number, string, string, JsonValue, JsonObject, string, string];

export const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
export const COLUMNS = `position, stream_id, stream_version, id, type, data, metadata,
  to_char(occurred_at AT TIME ZONE 'UTC', ${ISO}), to_char(recorded_at AT TIME ZONE 'UTC', ${ISO})`;

export const toRecorded = (row: Row | KeyedRow): RecordedEvent => ({
  position: BigInt(row[0]),
  streamId: row[1],
  streamVersion: row[2],
  id: row[3],
  type: row[4],
  data: row[5],
  metadata: row[6],
  occurredAt: row[7],
  recordedAt: row[8],
});

/**
 * COLUMNS and one more: for an event with sealed personal data, its subject's key as the key
 * table holds it now (hex; NULL once forgotten), read in the same statement as the event, so
 * opening a page costs no second round trip (and no query on another connection). `strpos` on
 * the metadata's text is cheaper than parsing it as JSON, and sealed metadata always holds the
 * SEALED key. `S` is the schema as the statement names it.
 */
export const keyedColumnsText = (S: string): string =>
  `${COLUMNS}, CASE WHEN strpos(metadata::text, '"${SEALED}"') > 0
     THEN (SELECT encode(k.key, 'hex') FROM ${S}.subject_keys k WHERE k.subject = metadata->>'subject') END`;

/** A row read with keyedColumnsText. */
export type KeyedRow = [...Row, string | null];

/**
 * The subjects' keys read with a page (keyedColumnsText), for StorePersonalData.open. A subject with no
 * key left (forgotten, or unknown here) is absent, which opens its events as forgotten.
 */
export function keysRead(rows: KeyedRow[]): Map<string, { key: Uint8Array }> {
  const keys = new Map<string, { key: Uint8Array }>();
  for (const row of rows) {
    const key = row[9];
    const subject = String(row[6].subject);
    if (key !== null && !keys.has(subject)) keys.set(subject, { key: Buffer.from(key, 'hex') });
  }
  return keys;
}
