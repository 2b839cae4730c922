/**
 * Retention and deletion on PostgreSQL (docs/lifecycle.md#retention-and-deletion): the
 * `stream_lifecycles` table and its tombstone trigger (migration 3 in schema.ts), the SQL form of
 * the visibility rules of src/core/retention.ts, and the scavenge.
 *
 * - Reads add a NOT EXISTS on `stream_lifecycles`, skipped at once while the table is empty.
 * - A tombstone is refused where `append_batch` moves the stream's head (a trigger on `streams`),
 *   so the check runs under the append lock; deleteStream takes that lock too, so its version
 *   check and the appends are decided in one order.
 * - A scavenge never removes the log's newest event: `append_batch` takes the next position from
 *   it. Versions live in `streams` and survive any removal. Deleted rows free space for reuse
 *   after (auto)vacuum; only VACUUM FULL gives it back to the file system.
 */
import type { Sql } from 'postgres';
import { StreamDeletedError, WrongExpectedVersionError } from '../../core/errors.js';
import { assertStartVersion, type LifecycleRecord, lifecycleOf, normalizeStreamMetadata } from '../../core/retention.js';
import type { DeleteStreamOptions, ScavengeResult, StreamLifecycleInfo, StreamMetadata } from '../../core/types.js';
import { assertExpectedVersion, assertStreamId, versionMatches } from '../../core/validation.js';
import { appendLockName } from './schema.js';

/** The SQLSTATE the tombstone trigger raises. */
export const TOMBSTONED_SQLSTATE = 'LL410';

/** Streams one scavenge statement visits. */
const SCAVENGE_STREAMS = 100;

/** True when event row `e` is hidden by lifecycle row `l`; `S` is the quoted schema. */
const hiddenBy = (S: string, e: string, l: string) => `(
  ${l}.tombstoned
  OR ${e}.stream_version < coalesce(${l}.truncate_before, 0)
  OR ${e}.stream_version <= coalesce(${l}.deleted_version, 0)
  OR (${l}.max_count IS NOT NULL
      AND ${e}.stream_version <= (SELECT s.version FROM ${S}.streams s WHERE s.stream_id = ${l}.stream_id) - ${l}.max_count)
  OR (${l}.max_age_seconds IS NOT NULL AND ${e}.recorded_at < now() - make_interval(secs => ${l}.max_age_seconds)))`;

/** The condition reads of `events` add (unaliased table): the first test is evaluated once per statement. */
export const visibleCondition = (S: string) =>
  `(NOT EXISTS (SELECT 1 FROM ${S}.stream_lifecycles)
    OR NOT EXISTS (SELECT 1 FROM ${S}.stream_lifecycles l WHERE l.stream_id = events.stream_id AND ${hiddenBy(S, 'events', 'l')}))`;

/** Migration 3 of schema.ts. */
export const lifecycleMigration = (S: string) => `
  CREATE TABLE ${S}.stream_lifecycles (
    stream_id        text    COLLATE "C" PRIMARY KEY,
    max_count        integer,
    max_age_seconds  integer,
    truncate_before  integer,
    deleted_version  integer,
    tombstoned       boolean NOT NULL DEFAULT false
  );
  -- An append to a tombstoned stream: refused where append_batch moves the stream's head.
  CREATE FUNCTION ${S}.refuse_tombstoned() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF EXISTS (SELECT 1 FROM ${S}.stream_lifecycles l WHERE l.stream_id = NEW.stream_id AND l.tombstoned) THEN
      RAISE EXCEPTION 'stream % was deleted for good', NEW.stream_id USING ERRCODE = '${TOMBSTONED_SQLSTATE}';
    END IF;
    RETURN NEW;
  END
  $fn$;
  CREATE TRIGGER streams_not_tombstoned BEFORE INSERT OR UPDATE ON ${S}.streams
    FOR EACH ROW EXECUTE FUNCTION ${S}.refuse_tombstoned();
`;

/** The tombstone trigger's error as the typed one, for the append that hit it. */
const asStreamDeleted = (error: unknown, stream: string): unknown =>
  (error as { code?: unknown })?.code === TOMBSTONED_SQLSTATE ? new StreamDeletedError(stream) : error;

interface LifecycleRow {
  max_count: number | null;
  max_age_seconds: number | null;
  truncate_before: number | null;
  deleted_version: number | null;
  tombstoned: boolean | null;
  version: number | null;
}

const toRecord = (row: LifecycleRow | undefined): LifecycleRecord | undefined => {
  if (!row || row.tombstoned === null) return undefined;
  const record: LifecycleRecord = {};
  if (row.max_count !== null) record.maxCount = row.max_count;
  if (row.max_age_seconds !== null) record.maxAgeSeconds = row.max_age_seconds;
  if (row.truncate_before !== null) record.truncateBefore = row.truncate_before;
  if (row.deleted_version !== null) record.deletedVersion = row.deleted_version;
  if (row.tombstoned) record.tombstoned = true;
  return record;
};

export function postgresRetention(sql: Sql, schema: string, assertOpen: () => void) {
  const S = sql(schema);
  const appendLock = appendLockName(schema);

  /** The stream's lifecycle row (all null when it has none) and its version. */
  const load = async (q: Sql, stream: string): Promise<LifecycleRow> => {
    const [row] = await q<LifecycleRow[]>`
      SELECT l.max_count, l.max_age_seconds, l.truncate_before, l.deleted_version, l.tombstoned,
             (SELECT s.version FROM ${S}.streams s WHERE s.stream_id = ${stream}) AS version
      FROM (SELECT 1) x LEFT JOIN ${S}.stream_lifecycles l ON l.stream_id = ${stream}`;
    return row as LifecycleRow;
  };

  return {
    /**
     * The error an append that failed should answer: a tombstoned stream fails every append with
     * StreamDeleted, also one whose expected version did not match (tombstones are forever).
     */
    async appendError(error: unknown, stream: string): Promise<unknown> {
      if (!(error instanceof WrongExpectedVersionError)) return asStreamDeleted(error, stream);
      try {
        const [row] = await sql`SELECT 1 FROM ${S}.stream_lifecycles WHERE stream_id = ${stream} AND tombstoned`;
        return row ? new StreamDeletedError(stream) : error;
      } catch {
        return error;
      }
    },

    /** Throws StreamDeletedError for a tombstoned stream (an append without events touches no row the trigger guards). */
    async assertNotTombstoned(stream: string): Promise<void> {
      const [row] = await sql`SELECT 1 FROM ${S}.stream_lifecycles WHERE stream_id = ${stream} AND tombstoned`;
      if (row) throw new StreamDeletedError(stream);
    },

    async setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void> {
      assertOpen();
      assertStreamId(stream);
      const { maxCount = null, maxAgeSeconds = null, truncateBefore = null } = normalizeStreamMetadata(metadata);
      const changed = await sql`
        INSERT INTO ${S}.stream_lifecycles AS l (stream_id, max_count, max_age_seconds, truncate_before)
        VALUES (${stream}, ${maxCount}, ${maxAgeSeconds}, ${truncateBefore})
        ON CONFLICT (stream_id) DO UPDATE SET max_count = excluded.max_count, max_age_seconds = excluded.max_age_seconds,
          truncate_before = excluded.truncate_before
        WHERE NOT l.tombstoned
        RETURNING 1`;
      if (changed.length === 0) throw new StreamDeletedError(stream);
    },

    async getStreamMetadata(stream: string) {
      assertOpen();
      assertStreamId(stream);
      const row = await load(sql, stream);
      return lifecycleOf(toRecord(row), row.version ?? 0);
    },

    async deleteStream(stream: string, opts: DeleteStreamOptions = {}) {
      assertOpen();
      assertStreamId(stream);
      const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
      assertExpectedVersion(expected);
      return (await sql.begin('isolation level read committed', async (tx) => {
        // The appends' lock: this check and the appends are decided one after the other.
        await tx`SELECT pg_advisory_xact_lock(hashtextextended(${appendLock}, 0))`;
        const row = await load(tx as unknown as Sql, stream);
        const current = row.version ?? 0;
        if (row.tombstoned) {
          if (opts.hard) return { streamVersion: current };
          throw new StreamDeletedError(stream);
        }
        if (!versionMatches(expected, current)) throw new WrongExpectedVersionError(stream, expected, current);
        if (opts.hard) {
          await tx`INSERT INTO ${S}.stream_lifecycles (stream_id, tombstoned) VALUES (${stream}, true)
                   ON CONFLICT (stream_id) DO UPDATE SET tombstoned = true`;
        } else if (current > 0) {
          await tx`INSERT INTO ${S}.stream_lifecycles (stream_id, deleted_version) VALUES (${stream}, ${current})
                   ON CONFLICT (stream_id) DO UPDATE SET deleted_version = excluded.deleted_version`;
        }
        // A snapshot folds the deleted events: the stream starts afresh without it.
        await tx`DELETE FROM ${S}.snapshots WHERE stream_id = ${stream}`;
        return { streamVersion: current };
      })) as { streamVersion: number };
    },

    /** A stream head without events (last_position 0: none is stored), under the appends' lock. */
    async restoreStreamStart(stream: string, start: number): Promise<void> {
      assertOpen();
      assertStreamId(stream);
      assertStartVersion(start);
      await sql.begin('isolation level read committed', async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtextextended(${appendLock}, 0))`;
        const row = await load(tx as unknown as Sql, stream);
        const current = row.version ?? 0;
        if (current === start) return; // an import resumed
        if (row.tombstoned) throw new StreamDeletedError(stream);
        if (current > 0) throw new WrongExpectedVersionError(stream, 'no_stream', current);
        await tx`INSERT INTO ${S}.streams (stream_id, version, last_position, last_recorded_at) VALUES (${stream}, ${start}, 0, now())`;
      });
    },

    async listStreamLifecycles(opts: { after?: string; limit?: number } = {}): Promise<StreamLifecycleInfo[]> {
      assertOpen();
      const rows = await sql<(LifecycleRow & { stream_id: string })[]>`
        SELECT l.stream_id, l.max_count, l.max_age_seconds, l.truncate_before, l.deleted_version, l.tombstoned,
               coalesce(s.version, 0) AS version
        FROM ${S}.stream_lifecycles l LEFT JOIN ${S}.streams s ON s.stream_id = l.stream_id
        WHERE l.stream_id > ${opts.after ?? ''} AND (l.tombstoned OR l.deleted_version IS NOT NULL OR l.max_count IS NOT NULL
              OR l.max_age_seconds IS NOT NULL OR l.truncate_before IS NOT NULL)
        ORDER BY l.stream_id LIMIT ${opts.limit ?? 100}`;
      return rows.map((row) => ({ streamId: row.stream_id, version: row.version ?? 0, ...lifecycleOf(toRecord(row), row.version ?? 0) }));
    },

    /**
     * SCAVENGE_STREAMS streams per statement (hidden events are a prefix of each stream): each
     * stream's first visible version from its record and version, then its events below it (or
     * older than maxAgeSeconds) through the stream index; never the log's newest event.
     */
    async scavenge(): Promise<ScavengeResult> {
      assertOpen();
      let removed = 0;
      let after = '';
      for (;;) {
        assertOpen();
        const [row] = await sql<{ removed: string; streams: number; last: string | null }[]>`
          WITH slice AS (
            SELECT l.stream_id, l.tombstoned, l.truncate_before, l.deleted_version, l.max_count, l.max_age_seconds, s.version
            FROM ${S}.stream_lifecycles l JOIN ${S}.streams s ON s.stream_id = l.stream_id
            WHERE l.stream_id > ${after} AND (l.tombstoned OR l.deleted_version IS NOT NULL OR l.max_count IS NOT NULL
                  OR l.max_age_seconds IS NOT NULL OR l.truncate_before IS NOT NULL)
            ORDER BY l.stream_id LIMIT ${SCAVENGE_STREAMS}
          ), floors AS (
            SELECT stream_id, max_age_seconds, CASE WHEN tombstoned THEN version + 1 ELSE LEAST(version + 1, GREATEST(
                     coalesce(truncate_before, 1), coalesce(deleted_version, 0) + 1,
                     CASE WHEN max_count IS NULL THEN 1 ELSE version - max_count + 1 END)) END AS below
            FROM slice
          ), gone AS (
            -- Per stream (LATERAL), so each is an index range: a join lets the planner scan the log.
            DELETE FROM ${S}.events WHERE position < (SELECT max(position) FROM ${S}.events) AND position IN (
              SELECT x.position FROM floors f CROSS JOIN LATERAL (
                SELECT e.position FROM ${S}.events e WHERE e.stream_id = f.stream_id AND e.stream_version < f.below
                UNION ALL
                SELECT e.position FROM ${S}.events e WHERE f.max_age_seconds IS NOT NULL AND e.stream_id = f.stream_id
                  AND e.recorded_at < now() - make_interval(secs => f.max_age_seconds)) x)
            RETURNING 1
          )
          SELECT (SELECT count(*) FROM gone)::text AS removed, (SELECT count(*) FROM slice)::integer AS streams,
                 (SELECT max(stream_id) FROM slice) AS last`;
        removed += Number(row?.removed ?? 0);
        if (!row?.last || row.streams < SCAVENGE_STREAMS) return { removed };
        after = row.last;
      }
    },
  };
}
