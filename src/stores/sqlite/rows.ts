/** Mapping between rows of the events table and RecordedEvent (the store and inline projections share it). */
import type { JsonObject, JsonValue, RecordedEvent } from '../../core/types.js';

/** One row of the events table as read with `.raw()` and COLUMNS (read models reuse both). */
export type Row = [number, string, number, string, string, string, string, string, string];
export const COLUMNS = 'position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at';

export const toRecorded = (row: Row): RecordedEvent => ({
  position: BigInt(row[0]),
  streamId: row[1],
  streamVersion: row[2],
  id: row[3],
  type: row[4],
  data: JSON.parse(row[5]) as JsonValue,
  metadata: JSON.parse(row[6]) as JsonObject,
  occurredAt: row[7],
  recordedAt: row[8],
});
