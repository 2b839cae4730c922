/**
 * The PostgreSQL schema, as numbered migrations inside one schema per store (one per tenant).
 * `<schema>.migrations` records which have run. Opening a store applies the missing ones in one
 * transaction under an advisory lock, so concurrent openers of a new schema migrate it once.
 *
 * Ordering (design §5): every append transaction takes one advisory lock per schema before it
 * assigns positions and holds it until commit, so positions become visible strictly in order and
 * readers need no visibility filter. docs/postgres.md has the measurements behind this choice.
 */
import type { Sql } from 'postgres';
import { InvalidArgumentError, SchemaTooNewError } from '../../core/errors.js';

export const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !SCHEMA_NAME_PATTERN.test(schema)) {
    throw new InvalidArgumentError('schema', `got ${JSON.stringify(schema)}`, 'a lower-case SQL identifier: [a-z_][a-z0-9_]{0,62}');
  }
}

/** The NOTIFY channel appends of this schema signal on (identifiers are at most 63 bytes). */
export const channelName = (schema: string): string => `logline_${schema}`.slice(0, 63);

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

    -- Appends a batch of appends in one statement: [{"s": stream, "e": expected, "ev": [event…]}].
    -- expected: -1 any, -2 no_stream, -3 exists, n >= 0 exact version. The caller puts each stream
    -- and each event id at most once in a batch. Per append it answers 'ok', 'version' (expected
    -- version mismatch, nothing stored) or 'stored' (some ids already exist: the caller decides
    -- between an idempotent retry and a conflict). Failed appends store nothing; the others do.
    CREATE FUNCTION ${S}.append_batch(batch_text text)
      RETURNS TABLE (ord integer, status text, actual integer, version integer, last_position bigint, recorded_at text)
      LANGUAGE plpgsql AS $fn$
    DECLARE
      batch json := batch_text::json;
      head bigint;
    BEGIN
      -- Held until commit: positions are assigned and become visible in order (design §5).
      -- Later statements take fresh snapshots, so they see the previous holder's commit.
      PERFORM pg_advisory_xact_lock(hashtextextended('logline:append:${schema}', 0));
      SELECT coalesce(max(e.position), 0) INTO head FROM ${S}.events e;
      RETURN QUERY
      WITH input AS (
        SELECT (a.n - 1)::integer AS ord, a.value->>'s' AS stream_id, (a.value->>'e')::integer AS expected,
               a.value->'ev' AS ev, json_array_length(a.value->'ev') AS n
        FROM json_array_elements(batch) WITH ORDINALITY AS a(value, n)
      ),
      checked AS (
        SELECT i.*, coalesce(s.version, 0) AS actual,
               EXISTS (SELECT 1 FROM json_array_elements(i.ev) AS x(value)
                       JOIN ${S}.events e ON e.id = (x.value->>'id')::uuid) AS stored
        FROM input i LEFT JOIN ${S}.streams s ON s.stream_id = i.stream_id
      ),
      decided AS (
        SELECT c.*, CASE
            WHEN c.stored THEN 'stored'
            WHEN c.expected = -1 OR (c.expected = -2 AND c.actual = 0) OR (c.expected = -3 AND c.actual > 0)
                 OR c.expected = c.actual THEN 'ok'
            ELSE 'version' END AS status
        FROM checked c
      ),
      new_rows AS (
        SELECT d.ord, d.stream_id, d.actual + x.idx::integer AS stream_version, x.value AS ev,
               head + row_number() OVER (ORDER BY d.ord, x.idx) AS position
        FROM decided d CROSS JOIN LATERAL json_array_elements(d.ev) WITH ORDINALITY AS x(value, idx)
        WHERE d.status = 'ok'
      ),
      inserted AS (
        INSERT INTO ${S}.events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
        SELECT r.position, r.stream_id, r.stream_version, (r.ev->>'id')::uuid, r.ev->>'type', r.ev->'data',
               coalesce(r.ev->'metadata', '{}'::json), coalesce((r.ev->>'at')::timestamptz, now()), now()
        FROM new_rows r
        RETURNING 1
      ),
      heads AS (
        INSERT INTO ${S}.streams AS s (stream_id, version, last_position, last_recorded_at)
        SELECT r.stream_id, max(r.stream_version), max(r.position), now() FROM new_rows r GROUP BY r.stream_id
        ON CONFLICT (stream_id) DO UPDATE
          SET version = excluded.version, last_position = excluded.last_position, last_recorded_at = excluded.last_recorded_at
        RETURNING 1
      )
      SELECT d.ord, d.status, d.actual,
             CASE WHEN d.status = 'ok' THEN d.actual + d.n ELSE d.actual END,
             coalesce((SELECT max(r.position) FROM new_rows r WHERE r.ord = d.ord), head),
             to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      FROM decided d
      ORDER BY d.ord;
      PERFORM pg_notify('${channelName(schema)}', '');
    END
    $fn$;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Creates the schema if needed and applies the missing migrations, once, whoever else is opening it. */
export async function migrate(sql: Sql, schema: string): Promise<void> {
  assertSchemaName(schema);
  const S = `"${schema}"`;
  await sql.begin(async (tx) => {
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
