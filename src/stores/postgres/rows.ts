/** Mapping between rows of the events table and RecordedEvent (the store and its read models share it). */
import type { JsonObject, JsonValue, RecordedEvent } from '../../core/types.js';

/** The largest value of an `integer` column (stream versions). */
export const MAX_INT = 2_147_483_647;

/** One row of the events table as read with `.values()` and COLUMNS (read models reuse both). */
export type Row = [string, string, number, string, string, JsonValue, JsonObject, string, string];

export const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
export const COLUMNS = `position, stream_id, stream_version, id, type, data, metadata,
  to_char(occurred_at AT TIME ZONE 'UTC', ${ISO}), to_char(recorded_at AT TIME ZONE 'UTC', ${ISO})`;

export const toRecorded = (row: Row): RecordedEvent => ({
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
