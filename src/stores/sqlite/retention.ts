/**
 * Retention and deletion on SQLite (docs/lifecycle.md#retention-and-deletion): the
 * `stream_lifecycles` table (migration 2), the SQL form of the visibility rules of
 * src/core/retention.ts, and the scavenge.
 *
 * - A hidden event is one of a stream with a lifecycle row that hides it (tombstoned, below
 *   truncate_before, at or below deleted_version, older than max_age_seconds, or not among the
 *   newest max_count). Reads of `$all` add that condition only while the table has rows.
 * - Positions: `events.position` is a rowid (no AUTOINCREMENT), so SQLite would hand a deleted
 *   head's position out again. A scavenge therefore never removes the log's newest event; it stays
 *   on disk, hidden, until a newer one exists.
 * - Versions: a stream's version is its highest stored version, or the version a scavenge noted
 *   (`scavenged_version`) before removing its events, whichever is higher. A restored stream
 *   start (restoreStreamStart) is noted the same way.
 */
import type { Database } from 'better-sqlite3';
import { StreamDeletedError, WrongExpectedVersionError } from '../../core/errors.js';
import {
  ageCutoff,
  assertStartVersion,
  firstVisibleVersion,
  type LifecycleRecord,
  lifecycleOf,
  normalizeStreamMetadata,
} from '../../core/retention.js';
import type { DeleteStreamOptions, ScavengeResult, StreamLifecycleInfo, StreamMetadata } from '../../core/types.js';
import { assertExpectedVersion, assertStreamId, versionMatches } from '../../core/validation.js';

/** Events one scavenge transaction removes; appends from other processes get the lock in between. */
const SCAVENGE_SLICE = 5_000;
/** Streams a scavenge looks up at a time. */
const STREAMS_PER_PAGE = 1_000;

/** True when the event row `e` (alias) is hidden by the lifecycle row `l` (alias). */
const HIDDEN_BY = (e: string, l: string) => `(
  ${l}.tombstoned = 1
  OR ${e}.stream_version < coalesce(${l}.truncate_before, 0)
  OR ${e}.stream_version <= coalesce(${l}.deleted_version, 0)
  OR (${l}.max_count IS NOT NULL AND ${e}.stream_version
      <= (SELECT max(v.stream_version) FROM events v WHERE v.stream_id = ${l}.stream_id) - ${l}.max_count)
  OR (${l}.max_age_seconds IS NOT NULL AND ${e}.recorded_at
      < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ${l}.max_age_seconds || ' seconds')))`;

/** The WHERE condition a `$all` read adds while any lifecycle row exists. */
export const VISIBLE_IN_LOG = `NOT EXISTS (SELECT 1 FROM stream_lifecycles l WHERE l.stream_id = events.stream_id AND ${HIDDEN_BY('events', 'l')})`;

/** An event a scavenge removed. */
export interface Removed {
  position: number;
  stream_version: number;
}

type LifecycleRow = [number | null, number | null, number | null, number | null, number, number];

const toRecord = (row: LifecycleRow | undefined): LifecycleRecord | undefined => {
  if (!row) return undefined;
  const [maxCount, maxAgeSeconds, truncateBefore, deletedVersion, tombstoned] = row;
  const record: LifecycleRecord = {};
  if (maxCount !== null) record.maxCount = maxCount;
  if (maxAgeSeconds !== null) record.maxAgeSeconds = maxAgeSeconds;
  if (truncateBefore !== null) record.truncateBefore = truncateBefore;
  if (deletedVersion !== null) record.deletedVersion = deletedVersion;
  if (tombstoned) record.tombstoned = true;
  return record;
};

export function createSqliteRetention(db: Database, assertOpen: () => void) {
  const sql = {
    // Two plain index probes per append: one statement joining them costs more.
    version: db.prepare('SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?').pluck(),
    lifecycle: db.prepare('SELECT scavenged_version, tombstoned FROM stream_lifecycles WHERE stream_id = ?').raw(),
    any: db.prepare('SELECT EXISTS (SELECT 1 FROM stream_lifecycles)').pluck(),
    get: db
      .prepare(
        'SELECT max_count, max_age_seconds, truncate_before, deleted_version, tombstoned, scavenged_version FROM stream_lifecycles WHERE stream_id = ?',
      )
      .raw(),
    setMetadata: db.prepare(
      `INSERT INTO stream_lifecycles (stream_id, max_count, max_age_seconds, truncate_before) VALUES (?, ?, ?, ?)
       ON CONFLICT (stream_id) DO UPDATE SET max_count = excluded.max_count, max_age_seconds = excluded.max_age_seconds,
         truncate_before = excluded.truncate_before`,
    ),
    softDelete: db.prepare(
      `INSERT INTO stream_lifecycles (stream_id, deleted_version) VALUES (?, ?)
       ON CONFLICT (stream_id) DO UPDATE SET deleted_version = excluded.deleted_version`,
    ),
    dropSnapshots: db.prepare('DELETE FROM snapshots WHERE stream_id = ?'),
    tombstone: db.prepare(
      `INSERT INTO stream_lifecycles (stream_id, tombstoned) VALUES (?, 1) ON CONFLICT (stream_id) DO UPDATE SET tombstoned = 1`,
    ),
    list: db
      .prepare(
        `SELECT stream_id, max_count, max_age_seconds, truncate_before, deleted_version, tombstoned, scavenged_version
         FROM stream_lifecycles
         WHERE stream_id > ? AND (tombstoned = 1 OR deleted_version IS NOT NULL OR max_count IS NOT NULL
                                  OR max_age_seconds IS NOT NULL OR truncate_before IS NOT NULL)
         ORDER BY stream_id LIMIT ?`,
      )
      .raw(),
    /** A restored stream start: the version its removed events leave, as a scavenge notes it. */
    start: db.prepare(
      `INSERT INTO stream_lifecycles (stream_id, scavenged_version) VALUES (?, ?)
       ON CONFLICT (stream_id) DO UPDATE SET scavenged_version = excluded.scavenged_version`,
    ),
    noteVersion: db.prepare('UPDATE stream_lifecycles SET scavenged_version = max(scavenged_version, ?) WHERE stream_id = ?'),
    /** Streams whose record hides something, by id: what a scavenge visits. */
    toScavenge: db
      .prepare(
        `SELECT stream_id FROM stream_lifecycles
         WHERE stream_id > ? AND (tombstoned = 1 OR deleted_version IS NOT NULL OR max_count IS NOT NULL
                                  OR max_age_seconds IS NOT NULL OR truncate_before IS NOT NULL)
         ORDER BY stream_id LIMIT ${STREAMS_PER_PAGE}`,
      )
      .pluck(),
    /** The first version recorded at or after a time (maxAgeSeconds hides the versions before it). */
    firstSince: db.prepare('SELECT min(stream_version) FROM events WHERE stream_id = ? AND recorded_at >= ?').pluck(),
    withoutFirst: db
      .prepare(
        `SELECT count(*) FROM stream_lifecycles l WHERE l.scavenged_version > 0
         AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = l.stream_id AND e.stream_version = 1)`,
      )
      .pluck(),
    /** Up to n events of a stream below a version, never the log's newest (through the stream index). */
    removeBelow: db.prepare(
      `DELETE FROM events WHERE position IN (
         SELECT position FROM events WHERE stream_id = ? AND stream_version < ? AND position < (SELECT max(position) FROM events)
         ORDER BY stream_version LIMIT ?)
       RETURNING position, stream_version`,
    ),
  };

  /** [version, tombstoned] of a stream. */
  const streamHead = (stream: string): [number, 0 | 1] => {
    const stored = sql.version.get(stream) as number;
    const lifecycle = sql.lifecycle.get(stream) as [number, 0 | 1] | undefined;
    return lifecycle ? [Math.max(stored, lifecycle[0]), lifecycle[1]] : [stored, 0];
  };
  const version = (stream: string): number => streamHead(stream)[0];
  const record = (stream: string) => toRecord(sql.get.get(stream) as LifecycleRow | undefined);
  const assertNotTombstoned = (stream: string) => {
    if (streamHead(stream)[1]) throw new StreamDeletedError(stream);
  };

  return {
    /** [version, tombstoned] for the append path (inside its transaction). */
    streamHead,
    version,
    /** Whether `$all` reads need the visibility condition at all. */
    anyLifecycle: () => sql.any.get() === 1,
    record,

    /** Positions removed by the last scavenge slices (stats() uncounts those it had counted). */
    /**
     * Streams whose first event a scavenge removed: stats() counts a stream by its version-1 event,
     * so these are added to that count.
     */
    streamsWithoutFirstEvent: () => sql.withoutFirst.get() as number,

    methods: (onRemoved: (removed: Removed[]) => void) => ({
      async setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void> {
        assertOpen();
        assertStreamId(stream);
        const { maxCount = null, maxAgeSeconds = null, truncateBefore = null } = normalizeStreamMetadata(metadata);
        db.transaction(() => {
          assertNotTombstoned(stream);
          sql.setMetadata.run(stream, maxCount, maxAgeSeconds, truncateBefore);
        }).immediate();
      },

      async getStreamMetadata(stream: string) {
        assertOpen();
        assertStreamId(stream);
        return lifecycleOf(record(stream), version(stream));
      },

      async deleteStream(stream: string, opts: DeleteStreamOptions = {}) {
        assertOpen();
        assertStreamId(stream);
        const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
        assertExpectedVersion(expected);
        return db
          .transaction(() => {
            const [current, tombstoned] = streamHead(stream);
            if (tombstoned) {
              if (opts.hard) return { streamVersion: current };
              throw new StreamDeletedError(stream);
            }
            if (!versionMatches(expected, current)) throw new WrongExpectedVersionError(stream, expected, current);
            if (opts.hard) sql.tombstone.run(stream);
            else if (current > 0) sql.softDelete.run(stream, current);
            // A snapshot folds the deleted events: the stream starts afresh without it.
            sql.dropSnapshots.run(stream);
            return { streamVersion: current };
          })
          .immediate();
      },

      async restoreStreamStart(stream: string, start: number): Promise<void> {
        assertOpen();
        assertStreamId(stream);
        assertStartVersion(start);
        db.transaction(() => {
          const [current, tombstoned] = streamHead(stream);
          if (current === start) return; // an import resumed
          if (tombstoned) throw new StreamDeletedError(stream);
          if (current > 0) throw new WrongExpectedVersionError(stream, 'no_stream', current);
          // The stream's version is max(stored versions, scavenged_version): no event row needed.
          sql.start.run(stream, start);
        }).immediate();
      },

      async listStreamLifecycles(opts: { after?: string; limit?: number } = {}): Promise<StreamLifecycleInfo[]> {
        assertOpen();
        const rows = sql.list.all(opts.after ?? '', opts.limit ?? 100) as [string, ...LifecycleRow][];
        return rows.map(([streamId, ...row]) => {
          const v = version(streamId);
          return { streamId, version: v, ...lifecycleOf(toRecord(row), v) };
        });
      },

      /**
       * Stream by stream (hidden events are a prefix of each stream): the first visible version,
       * then the events below it through the stream index. One write transaction removes up to
       * SCAVENGE_SLICE events, from as many streams as that takes, so other writers get the lock
       * in between and a commit is not paid per stream.
       */
      async scavenge(): Promise<ScavengeResult> {
        assertOpen();
        let removed = 0;
        let after = '';
        for (;;) {
          const streams = sql.toScavenge.all(after) as string[];
          const pending = [...streams];
          while (pending.length) {
            assertOpen();
            const slice = db
              .transaction(() => {
                const out: Removed[] = [];
                while (pending.length && out.length < SCAVENGE_SLICE) {
                  const stream = pending[0] as string;
                  const current = version(stream);
                  // Kept even once every event is gone: the version outlives them.
                  sql.noteVersion.run(current, stream);
                  const found = record(stream);
                  let below = Math.min(firstVisibleVersion(found, current), current + 1);
                  const cutoff = ageCutoff(found, Date.now());
                  if (cutoff !== undefined) below = Math.max(below, (sql.firstSince.get(stream, cutoff) as number | null) ?? current + 1);
                  const room = SCAVENGE_SLICE - out.length;
                  const gone = sql.removeBelow.all(stream, below, room) as Removed[];
                  out.push(...gone);
                  if (gone.length < room) pending.shift(); // this stream is done
                }
                return out;
              })
              .immediate();
            removed += slice.length;
            onRemoved(slice);
            await new Promise((resolve) => setImmediate(resolve));
          }
          if (streams.length < STREAMS_PER_PAGE) break;
          after = streams[streams.length - 1] as string;
        }
        // Give the freed pages back to the file system where the database allows it (new files do).
        if (removed > 0 && db.pragma('auto_vacuum', { simple: true }) === 2) db.pragma('incremental_vacuum');
        return { removed };
      },
    }),
  };
}
