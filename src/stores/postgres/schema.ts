/**
 * The PostgreSQL schema, as numbered migrations inside one schema per store (one per tenant).
 * `<schema>.migrations` records which have run. Opening a store applies the missing ones in one
 * transaction under an advisory lock, so concurrent openers of a new schema migrate it once.
 *
 * Ordering (docs/postgres.md, global order): every append transaction takes one advisory lock per schema before it
 * assigns positions and holds it until commit, so positions become visible strictly in order and
 * readers need no visibility filter. docs/postgres.md has the measurements behind this choice.
 */
import type { Sql } from 'postgres';
import { InvalidArgumentError, SchemaTooNewError } from '../../core/errors.js';
import { lifecycleMigration } from './retention.js';
import { subjectKeysSchema } from './subject-keys.js';

export const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !SCHEMA_NAME_PATTERN.test(schema)) {
    throw new InvalidArgumentError('schema', `got ${JSON.stringify(schema)}`, 'a lower-case SQL identifier: [a-z_][a-z0-9_]{0,62}');
  }
}

/** The advisory lock every append transaction of this schema holds from assigning positions until commit. */
export const appendLockName = (schema: string): string => `logline:append:${schema}`;

/** The NOTIFY channel appends of this schema signal on (identifiers are at most 63 bytes). */
export const channelName = (schema: string): string => `logline_${schema}`.slice(0, 63);

/**
 * A stream's category (docs/store.md, categories): its id before the first '-', NULL for an id
 * without one. Queries must spell it like this for PostgreSQL to use the index on it.
 */
export const CATEGORY_SQL = "(CASE WHEN strpos(stream_id, '-') > 1 THEN split_part(stream_id, '-', 1) END)";

/**
 * Migration n as SQL text. Only validated identifiers are interpolated (the schema name), never
 * values. `S` is the quoted schema.
 */
const MIGRATIONS: ReadonlyArray<(S: string, schema: string) => string> = [
  // 1: the log, stream heads, snapshots, the append function.
  (S, schema) => `
    CREATE TABLE ${S}.events (
      position        bigint      PRIMARY KEY,
      stream_id       text        COLLATE "C" NOT NULL,
      stream_version  integer     NOT NULL,
      id              uuid        NOT NULL,
      type            text        NOT NULL,
      data            json        NOT NULL,
      metadata        json        NOT NULL,
      occurred_at     timestamptz NOT NULL,
      recorded_at     timestamptz NOT NULL
    );
    CREATE UNIQUE INDEX events_stream ON ${S}.events (stream_id, stream_version);
    CREATE UNIQUE INDEX events_id ON ${S}.events (id);

    CREATE TABLE ${S}.streams (
      stream_id        text        COLLATE "C" PRIMARY KEY,
      version          integer     NOT NULL,
      last_position    bigint      NOT NULL,
      last_recorded_at timestamptz NOT NULL
    );

    CREATE TABLE ${S}.snapshots (
      stream_id        text    COLLATE "C" NOT NULL,
      name             text    NOT NULL,
      stream_version   integer NOT NULL,
      snapshot_version integer NOT NULL,
      state            json    NOT NULL,
      taken_at         text    NOT NULL,
      PRIMARY KEY (stream_id, name)
    );

    -- Appends a batch of appends in one statement. Per append (arrays in append order): stream,
    -- expected version (-1 any, -2 no_stream, -3 exists, n >= 0 exact) and event count; per event
    -- (arrays in append order, then event order): id, type, occurredAt (NULL: recordedAt), and data
    -- and metadata as two JSON arrays (parsed once each). All arrive as text and are cast here. The
    -- caller puts each stream and each event id at most once in a batch. Per append it answers 'ok',
    -- 'version' (expected version mismatch, nothing stored) or 'stored' (some of its ids exist: the
    -- caller decides between an idempotent retry and a conflict); only 'ok' appends are stored.
    CREATE FUNCTION ${S}.append_batch(p_streams text, p_expected text, p_counts text, p_ids text, p_types text,
                                      p_at text, p_data text, p_metadata text)
      RETURNS TABLE (ord integer, status text, actual integer, version integer, last_position bigint, recorded_at text)
      LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
      head bigint;
    BEGIN
      -- Held until commit: positions are assigned and become visible in order (design §5).
      -- Later statements take fresh snapshots, so they see the previous holder's commit.
      PERFORM pg_advisory_xact_lock(hashtextextended('${appendLockName(schema)}', 0));
      SELECT coalesce(max(e.position), 0) INTO head FROM ${S}.events e;
      RETURN QUERY
      WITH input AS (
        SELECT (a.k - 1)::integer AS ord, a.stream_id, a.expected, a.n
        FROM unnest(p_streams::text[], p_expected::integer[], p_counts::integer[]) WITH ORDINALITY AS a(stream_id, expected, n, k)
      ),
      slots AS (  -- which append and which place in it each event of the arrays belongs to
        SELECT i.ord, g.idx, row_number() OVER (ORDER BY i.ord, g.idx) AS k
        FROM input i CROSS JOIN LATERAL generate_series(1, i.n) AS g(idx)
      ),
      ev AS (
        SELECT s.ord, s.idx, s.k, x.id, x.type, x.at
        FROM unnest(p_ids::uuid[], p_types::text[], p_at::timestamptz[]) WITH ORDINALITY AS x(id, type, at, k)
        JOIN slots s ON s.k = x.k
      ),
      stored AS (  -- = ANY(array) keeps this to index probes whatever the planner thinks of ev's size
        SELECT DISTINCT ev.ord FROM ev
        WHERE ev.id IN (SELECT e.id FROM ${S}.events e WHERE e.id = ANY(p_ids::uuid[]))
      ),
      decided AS (
        SELECT i.ord, i.stream_id, i.n, coalesce(s.version, 0) AS actual, CASE
            WHEN i.ord IN (SELECT st.ord FROM stored st) THEN 'stored'
            WHEN i.expected = -1 OR (i.expected = -2 AND coalesce(s.version, 0) = 0)
                 OR (i.expected = -3 AND coalesce(s.version, 0) > 0) OR i.expected = coalesce(s.version, 0) THEN 'ok'
            ELSE 'version' END AS status
        FROM input i LEFT JOIN ${S}.streams s ON s.stream_id = i.stream_id
      ),
      new_rows AS (
        SELECT ev.k, ev.ord, d.stream_id, d.actual + ev.idx AS stream_version, ev.id, ev.type, ev.at,
               head + row_number() OVER (ORDER BY ev.k) AS position
        FROM ev JOIN decided d ON d.ord = ev.ord
        WHERE d.status = 'ok'
      ),
      inserted AS (
        INSERT INTO ${S}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
        SELECT r.position, r.stream_id, r.stream_version, r.id, r.type, dj.value, mj.value, coalesce(r.at, now()), now()
        FROM new_rows r
        JOIN json_array_elements(p_data::json) WITH ORDINALITY AS dj(value, k) ON dj.k = r.k
        JOIN json_array_elements(p_metadata::json) WITH ORDINALITY AS mj(value, k) ON mj.k = r.k
        RETURNING 1
      ),
      heads AS (
        INSERT INTO ${S}.streams AS s (stream_id, version, last_position, last_recorded_at)
        SELECT r.stream_id, max(r.stream_version), max(r.position), now() FROM new_rows r GROUP BY r.stream_id
        ON CONFLICT (stream_id) DO UPDATE
          SET version = excluded.version, last_position = excluded.last_position, last_recorded_at = excluded.last_recorded_at
        RETURNING 1
      ),
      last_positions AS (
        SELECT r.ord, max(r.position) AS position FROM new_rows r GROUP BY r.ord
      )
      SELECT d.ord, d.status, d.actual,
             CASE WHEN d.status = 'ok' THEN d.actual + d.n ELSE d.actual END,
             coalesce(lp.position, head),
             to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      FROM decided d LEFT JOIN last_positions lp ON lp.ord = d.ord
      ORDER BY d.ord;
      PERFORM pg_notify('${channelName(schema)}', '');
    END
    $fn$;
  `,

  // 2: append_batch in call order. The same stream may appear several times in one batch (a hot
  // stream coalesces into one commit): appends are decided one after the other in array order,
  // each against the versions the appends before it left, so a failed check fails that append
  // only. recordedAt is taken after the ordering lock and never goes below the head's, so it
  // never goes backwards along positions. Same signature and answer as migration 1; an 'ok'
  // append without events answers the head as it stood at its turn.
  (S, schema) => appendBatchFunction(S, schema, 2),

  // 3: subject keys of personal data (docs/lifecycle.md#forget-a-person).
  (S) => subjectKeysSchema(S),

  // 4: retention and deletion per stream, and the tombstone check on appends (retention.ts).
  (S) => lifecycleMigration(S),

  // 5: category and event-type reads from $all through an index each, in position order. On a
  // large existing log this builds both indexes once, holding appends back meanwhile.
  (S) => `
    CREATE INDEX events_category ON ${S}.events (${CATEGORY_SQL}, position);
    CREATE INDEX events_type ON ${S}.events (type, position);
  `,

  // 6: the NOTIFY of an append names the head it left (the batch's last position), so a store
  // that announced its own commit already does not wake its readers a second time for it; and
  // append_batch keeps its plans instead of planning every statement on every call.
  (S, schema) => appendBatchFunction(S, schema, 6),
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** How migrations 2 and 6 have append_batch plan its statements, and what its NOTIFY says. */
const APPEND_BATCH_VARIANTS = {
  2: {
    // Plan every statement for the call at hand: a generic plan cached while the tables were
    // small (a new store) keeps sequential scans of events as it grows (measured: 27 ms per call
    // at 24k events for the stored-id probe, growing with the table).
    planning: 'SET plan_cache_mode = force_custom_plan',
    notifyPayload: "''",
  },
  6: {
    // Cached (generic) plans, which can no longer pick a sequential scan of a table that was
    // small when the plan was made: every statement here reads through an index. Planning every
    // call had cost about half of a 30-append call (docs/postgres.md, "Planning").
    planning: 'SET enable_seqscan = off',
    notifyPayload: 'head::text',
  },
} as const;

/** append_batch as migrations 2 and 6 define it: the same body, planned and announced differently. */
function appendBatchFunction(S: string, schema: string, migration: keyof typeof APPEND_BATCH_VARIANTS): string {
  const { planning, notifyPayload } = APPEND_BATCH_VARIANTS[migration];
  return `
    CREATE OR REPLACE FUNCTION ${S}.append_batch(p_streams text, p_expected text, p_counts text, p_ids text, p_types text,
                                                 p_at text, p_data text, p_metadata text)
      RETURNS TABLE (ord integer, status text, actual integer, version integer, last_position bigint, recorded_at text)
      LANGUAGE plpgsql
      ${planning}
      AS $fn$
    #variable_conflict use_column
    DECLARE
      streams text[] := p_streams::text[];
      expected integer[] := p_expected::integer[];
      counts integer[] := p_counts::integer[];
      ids uuid[] := p_ids::uuid[];
      appends integer := coalesce(cardinality(streams), 0);
      head bigint;
      last_at timestamptz;
      stamp timestamptz;
      slot integer[];      -- per append: its stream's index among the batch's distinct streams
      versions integer[];  -- per distinct stream: its version so far, as the loop decides
      hits bigint[];       -- indexes (into the event arrays) of ids already stored
      statuses text[] := '{}';
      actuals integer[] := '{}';
      firsts bigint[] := '{}';   -- per append: position of its first event
      starts bigint[] := '{}';   -- per append: index of its first event in the event arrays
      next_event bigint := 1;
      cur integer;
      want integer;
      n integer;
    BEGIN
      -- Held until commit: positions are assigned and become visible in order (docs/postgres.md).
      -- Later statements take fresh snapshots (read committed, pinned by the store), so they see
      -- the previous holder's commit.
      PERFORM pg_advisory_xact_lock(hashtextextended('${appendLockName(schema)}', 0));
      SELECT e.position, e.recorded_at INTO head, last_at FROM ${S}.events e ORDER BY e.position DESC LIMIT 1;
      head := coalesce(head, 0);
      -- The clock now, after the lock (now() would be the transaction's start, which can precede
      -- the previous holder's); never below the head's time, should the clock step back.
      stamp := greatest(clock_timestamp(), last_at);

      -- Versions and stored ids: = ANY(array) keeps both to index probes whatever the planner
      -- thinks of the batch's size.
      WITH a AS (SELECT a.stream_id, a.k FROM unnest(streams) WITH ORDINALITY AS a(stream_id, k)),
      d AS (SELECT a.stream_id, row_number() OVER (ORDER BY min(a.k))::integer AS idx FROM a GROUP BY a.stream_id)
      SELECT (SELECT array_agg(d.idx ORDER BY a.k) FROM a JOIN d ON d.stream_id = a.stream_id),
             (SELECT array_agg(coalesce(s.version, 0) ORDER BY d.idx) FROM d
              LEFT JOIN (SELECT s.stream_id, s.version FROM ${S}.streams s WHERE s.stream_id = ANY(streams)) s ON s.stream_id = d.stream_id)
      INTO slot, versions;
      SELECT array_agg(x.k) INTO hits FROM unnest(ids) WITH ORDINALITY AS x(id, k)
      WHERE x.id IN (SELECT e.id FROM ${S}.events e WHERE e.id = ANY(ids));

      FOR j IN 1 .. appends LOOP
        n := counts[j];
        cur := versions[slot[j]];
        want := expected[j];
        actuals[j] := cur;
        starts[j] := next_event;
        firsts[j] := head + 1;
        IF hits IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(hits) h WHERE h >= next_event AND h < next_event + n) THEN
          statuses[j] := 'stored';
        ELSIF want = -1 OR (want = -2 AND cur = 0) OR (want = -3 AND cur > 0) OR want = cur THEN
          statuses[j] := 'ok';
          versions[slot[j]] := cur + n;
          head := head + n;
        ELSE
          statuses[j] := 'version';
        END IF;
        next_event := next_event + n;
      END LOOP;

      RETURN QUERY
      WITH a AS (
        SELECT (a.k - 1)::integer AS ord, a.stream_id, a.n, a.status, a.actual, a.first_position, a.first_event
        FROM unnest(streams, counts, statuses, actuals, firsts, starts)
          WITH ORDINALITY AS a(stream_id, n, status, actual, first_position, first_event, k)
      ),
      new_rows AS (  -- each event of an accepted append: its version, position and place in the arrays
        SELECT a.stream_id, a.actual + g.i AS stream_version, a.first_position + g.i - 1 AS position, a.first_event + g.i - 1 AS k
        FROM a CROSS JOIN LATERAL generate_series(1, a.n) AS g(i)
        WHERE a.status = 'ok'
      ),
      inserted AS (
        INSERT INTO ${S}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
        SELECT r.position, r.stream_id, r.stream_version, x.id, x.type, dj.value, mj.value, coalesce(x.at, stamp), stamp
        FROM new_rows r
        JOIN unnest(ids, p_types::text[], p_at::timestamptz[]) WITH ORDINALITY AS x(id, type, at, k) ON x.k = r.k
        JOIN json_array_elements(p_data::json) WITH ORDINALITY AS dj(value, k) ON dj.k = r.k
        JOIN json_array_elements(p_metadata::json) WITH ORDINALITY AS mj(value, k) ON mj.k = r.k
        RETURNING 1
      ),
      heads AS (
        INSERT INTO ${S}.streams AS s (stream_id, version, last_position, last_recorded_at)
        SELECT r.stream_id, max(r.stream_version), max(r.position), stamp FROM new_rows r GROUP BY r.stream_id
        ON CONFLICT (stream_id) DO UPDATE
          SET version = excluded.version, last_position = excluded.last_position, last_recorded_at = excluded.last_recorded_at
        RETURNING 1
      )
      SELECT a.ord, a.status, a.actual,
             CASE WHEN a.status = 'ok' THEN a.actual + a.n ELSE a.actual END,
             a.first_position + CASE WHEN a.status = 'ok' THEN a.n ELSE 0 END - 1,
             to_char(stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      FROM a ORDER BY a.ord;
      PERFORM pg_notify('${channelName(schema)}', ${notifyPayload});
    END
    $fn$;
  `;
}

/** Creates the schema if needed and applies the missing migrations, once, whoever else is opening it. */
export async function migrate(sql: Sql, schema: string): Promise<void> {
  assertSchemaName(schema);
  const S = `"${schema}"`;
  // Read committed whatever the database's default: after waiting for the lock, the version
  // check must see what a concurrent opener just committed (a repeatable-read snapshot would not).
  await sql.begin('isolation level read committed', async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`logline:migrate:${schema}`}, 0))`;
    await tx`CREATE SCHEMA IF NOT EXISTS ${tx(schema)}`;
    await tx`CREATE TABLE IF NOT EXISTS ${tx(schema)}.migrations (
               version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    const [row] = await tx<{ v: number }[]>`SELECT coalesce(max(version), 0)::integer AS v FROM ${tx(schema)}.migrations`;
    const current = row?.v ?? 0;
    if (current > SCHEMA_VERSION) throw new SchemaTooNewError('postgres', current, SCHEMA_VERSION);
    for (let version = current; version < SCHEMA_VERSION; version++) {
      await tx.unsafe((MIGRATIONS[version] as (S: string, schema: string) => string)(S, schema));
      await tx`INSERT INTO ${tx(schema)}.migrations (version) VALUES (${version + 1})`;
    }
  });
}
