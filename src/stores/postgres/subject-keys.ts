/**
 * The PostgreSQL key table of personal data (docs/lifecycle.md#forget-a-person): one key per
 * subject, raw or wrapped by the master key, and the streams that hold each subject's events
 * (forget drops their snapshots). PostgreSQL never overwrites a row in place: the destroyed key
 * stays in the old row version until VACUUM, so forget rewrites the (small) key table with
 * VACUUM FULL, which leaves no file holding it once no transaction older than the forget is open
 * (VACUUM keeps row versions such a transaction may still see). WAL segments keep it until they
 * are recycled.
 */
import type { Sql } from 'postgres';
import type { KeyTable, StoredKey } from '../../core/personal-data.js';
import { arrayLiteral } from './arrays.js';
import { coalescedPerTurn } from './coalesce.js';

/** Migration 3 (src/stores/postgres/schema.ts); `S` is the quoted schema. */
export const subjectKeysSchema = (S: string): string => `
  CREATE TABLE ${S}.subject_keys (
    subject      text COLLATE "C" PRIMARY KEY,
    key          bytea,
    created_at   text NOT NULL,
    forgotten_at text
  );
  CREATE TABLE ${S}.subject_streams (
    subject   text COLLATE "C" NOT NULL,
    stream_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (subject, stream_id)
  );`;

interface KeyRow {
  subject: string;
  key: string | null;
  created_at: string;
  forgotten_at: string | null;
}

/** A key table whose rewrite failed still destroyed the key: say so where operators look (a process warning). */
const warnVacuumFailed = (schema: string) => (error: unknown) => {
  process.emitWarning(
    `VACUUM FULL of ${schema}.subject_keys after a forget failed (${String((error as Error)?.message ?? error)}): the destroyed key stays in an old row version until the table is vacuumed; forget the subject again once no transaction holds the table, or run VACUUM FULL as its owner`,
    { code: 'LOGLINE_FORGET_VACUUM' },
  );
};

/**
 * How long forget's VACUUM FULL waits for its exclusive lock. A transaction that read the key
 * table holds it back; waiting longer would queue every read of personal data behind the VACUUM.
 */
export const VACUUM_LOCK_TIMEOUT_MS = 1000;

export function createPostgresKeyTable(sql: Sql, schema: string): KeyTable {
  const onVacuumError = warnVacuumFailed(schema);
  const S = sql(schema);
  /** VACUUM FULL of the key table, giving up (an error) when its lock is not free within the timeout. */
  const vacuumKeyTable = async () => {
    // One session for the setting and the VACUUM (which cannot share a multi-statement string).
    const session = await sql.reserve();
    try {
      await session`SELECT set_config('lock_timeout', ${`${VACUUM_LOCK_TIMEOUT_MS}ms`}, false)`;
      await session`VACUUM (FULL) ${S}.subject_keys`;
    } finally {
      await session`RESET lock_timeout`.catch(() => {});
      session.release();
    }
  };
  const toStored = (row: KeyRow): StoredKey => ({
    key: row.key === null ? undefined : Buffer.from(row.key, 'hex'),
    createdAt: row.created_at,
    forgottenAt: row.forgotten_at ?? undefined,
  });
  type Loaded = Map<string, StoredKey & { streamNoted?: boolean }>;
  const loaded = (rows: Array<KeyRow & { noted: boolean | null }>): Loaded =>
    new Map(rows.map((row) => [row.subject, { ...toStored(row), ...(row.noted !== null && { streamNoted: row.noted }) }]));
  /** Keys (and, with a stream, whether it is noted for each subject) asked for in one turn: one statement (coalesce.ts). */
  const loadTogether = coalescedPerTurn(async (loads: Array<{ subjects: string[]; stream: string | undefined }>): Promise<Loaded[]> => {
    if (loads.length === 1) {
      const [{ subjects, stream }] = loads as [(typeof loads)[0]];
      const noted =
        stream === undefined
          ? sql`NULL`
          : sql`EXISTS (SELECT 1 FROM ${S}.subject_streams s WHERE s.subject = k.subject AND s.stream_id = ${stream})`;
      return [
        loaded(
          await sql<(KeyRow & { noted: boolean | null })[]>`
            SELECT k.subject, encode(k.key, 'hex') AS key, k.created_at, k.forgotten_at, ${noted} AS noted FROM ${S}.subject_keys k
            WHERE k.subject = ANY(${arrayLiteral(subjects)}::text[])`,
        ),
      ];
    }
    const asked = loads.flatMap(({ subjects, stream }, ord) => subjects.map((subject) => ({ subject, stream: stream ?? null, ord })));
    const rows = await sql<(KeyRow & { noted: boolean | null; ord: number })[]>`
      SELECT r.ord::int AS ord, k.subject, encode(k.key, 'hex') AS key, k.created_at, k.forgotten_at,
        CASE WHEN r.stream IS NULL THEN NULL
          ELSE EXISTS (SELECT 1 FROM ${S}.subject_streams s WHERE s.subject = k.subject AND s.stream_id = r.stream) END AS noted
      FROM unnest(${arrayLiteral(asked.map((a) => a.subject))}::text[], ${arrayLiteral(asked.map((a) => a.stream))}::text[],
        ${arrayLiteral(asked.map((a) => a.ord))}::int[]) AS r(subject, stream, ord)
      JOIN ${S}.subject_keys k ON k.subject = r.subject`;
    const byLoad = loads.map((): Array<KeyRow & { noted: boolean | null }> => []);
    for (const row of rows) byLoad[row.ord]?.push(row);
    return byLoad.map(loaded);
  });
  return {
    load: (subjects, stream) => loadTogether({ subjects, stream }),
    async insert(keys, streams, at) {
      const keyRows = JSON.stringify([...keys].map(([subject, key]) => [subject, Buffer.from(key).toString('hex')]));
      await sql`
        WITH k AS (
          INSERT INTO ${S}.subject_keys (subject, key, created_at)
          SELECT r->>0, decode(r->>1, 'hex'), ${at} FROM json_array_elements(${keyRows}::text::json) AS r
          ON CONFLICT DO NOTHING
        )
        INSERT INTO ${S}.subject_streams (subject, stream_id)
        SELECT r->>0, r->>1 FROM json_array_elements(${JSON.stringify(streams)}::text::json) AS r
        ON CONFLICT DO NOTHING`;
    },
    async forget(subject, at) {
      const result = await sql.begin(async (tx) => {
        const [row] = await tx<{ forgotten_at: string | null }[]>`
          SELECT forgotten_at FROM ${S}.subject_keys WHERE subject = ${subject} FOR UPDATE`;
        if (!row) return undefined;
        if (row.forgotten_at !== null) return { subject, forgottenAt: row.forgotten_at, alreadyForgotten: true };
        await tx`UPDATE ${S}.subject_keys SET key = NULL, forgotten_at = ${at} WHERE subject = ${subject}`;
        await tx`DELETE FROM ${S}.snapshots WHERE stream_id IN (SELECT stream_id FROM ${S}.subject_streams WHERE subject = ${subject})`;
        return { subject, forgottenAt: at, alreadyForgotten: false };
      });
      // Outside the transaction (VACUUM cannot run in one); needs the table's owner. It keeps the
      // old row version while a transaction older than the forget is open, so a repeated forget
      // runs it again: the way to finish the job once such a transaction has ended.
      if (result) await vacuumKeyTable().catch(onVacuumError);
      return result;
    },
    async list(after, limit) {
      const rows = await sql<(KeyRow & { streams: string[] })[]>`
        SELECT k.subject, encode(k.key, 'hex') AS key, k.created_at, k.forgotten_at,
          coalesce((SELECT json_agg(s.stream_id ORDER BY s.stream_id) FROM ${S}.subject_streams s WHERE s.subject = k.subject), '[]') AS streams
        FROM ${S}.subject_keys k WHERE k.subject > ${after} ORDER BY k.subject LIMIT ${limit}`;
      return rows.map((row) => ({ subject: row.subject, ...toStored(row), streams: row.streams }));
    },
    async restore(rows) {
      const keyRows = JSON.stringify(
        rows.map((row) => [row.subject, row.key ? Buffer.from(row.key).toString('hex') : null, row.createdAt, row.forgottenAt ?? null]),
      );
      const streams = JSON.stringify(rows.flatMap((row) => row.streams.map((stream) => [row.subject, stream])));
      await sql`
        WITH k AS (
          INSERT INTO ${S}.subject_keys (subject, key, created_at, forgotten_at)
          SELECT r->>0, decode(r->>1, 'hex'), r->>2, r->>3 FROM json_array_elements(${keyRows}::text::json) AS r
          ON CONFLICT DO NOTHING
        )
        INSERT INTO ${S}.subject_streams (subject, stream_id)
        SELECT r->>0, r->>1 FROM json_array_elements(${streams}::text::json) AS r
        ON CONFLICT DO NOTHING`;
    },
    async status(subject) {
      const [row] = await sql<
        KeyRow[]
      >`SELECT subject, NULL AS key, created_at, forgotten_at FROM ${S}.subject_keys WHERE subject = ${subject}`;
      return row && { subject, createdAt: row.created_at, ...(row.forgotten_at === null ? {} : { forgottenAt: row.forgotten_at }) };
    },
  };
}
