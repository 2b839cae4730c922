/**
 * One way to run the views' SQL on SQLite and on PostgreSQL. Statements are written once, with
 * `?` placeholders, in the dialect both understand (upserts with ON CONFLICT, `||`, LIKE … ESCAPE).
 * SQLite handlers must stay synchronous (better-sqlite3 inside the projection's transaction), so
 * a projection's handlers build statements and `executor` runs them the backend's way.
 */
import type { Database, Statement as SqliteStatement } from 'better-sqlite3';
import type { EventStore, ProjectionContext, ProjectionDefinition, RecordedEvent } from 'logline';
import { arrayLiteral, type PostgresEventStore } from 'logline/postgres';
import type { SqliteEventStore } from 'logline/sqlite';
import type { TransactionSql } from 'postgres';

export type Param = string | number | bigint | null;
/**
 * One SQL statement, or a replacement: delete the rows of `table` whose `match` columns have
 * these values, then insert `rows` (values for `columns`). A batch of events on PostgreSQL keeps
 * only the last replacement per table and match values, and runs them together (see
 * mergedReplacements).
 */
export type Statement =
  | {
      sql: string;
      params?: Param[];
      /**
       * Run only if this table exists (qualified as `sql` names it); skipped otherwise. For
       * tables the projection does not own, which may be dropped by hand (a superseded version's).
       */
      ifTableExists?: string;
    }
  | { replace: { table: string; match: Record<string, string>; columns: string[]; rows: Param[][] } };
type Replacement = Extract<Statement, { replace: unknown }>['replace'];
/** Physical name of a logical table of the version being built (ctx.table). */
export type TableOf = (table: string) => string;
export type StatementBuilder = (event: RecordedEvent, table: TableOf) => Statement[];

export type Dialect = 'sqlite' | 'postgres';

/** `?` → `$1, $2, …` for postgres.js. The views' SQL has no `?` inside literals. */
const dollars = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};
/** PostgreSQL gets 64-bit positions as decimal strings (postgres.js would need type fetching otherwise). */
const pgParams = (params: Param[] = []) => params.map((p) => (typeof p === 'bigint' ? p.toString() : p));

const prepared = new WeakMap<Database, Map<string, SqliteStatement>>();
function prepare(db: Database, sql: string): SqliteStatement {
  let cache = prepared.get(db);
  if (!cache) prepared.set(db, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) cache.set(sql, (statement = db.prepare(sql)));
  return statement;
}

/**
 * What runs, in order: plain statements as written; replacements in their place (SQLite, one
 * event at a time) or merged after the other statements (PostgreSQL). Merging after is sound
 * because a table that replacements write is written by nothing else.
 */
type Runnable = { sql: string; params: unknown[]; ifTableExists?: string };
function inOrder(statements: Statement[], merge: boolean): Runnable[] {
  const plain: Runnable[] = [];
  const replacements: Replacement[] = [];
  for (const s of statements) {
    if ('replace' in s) {
      if (merge) replacements.push(s.replace);
      else plain.push(...asStatements(s.replace));
    } else plain.push({ sql: s.sql, params: merge ? pgParams(s.params) : (s.params ?? []), ifTableExists: s.ifTableExists });
  }
  return merge ? [...plain, ...mergedReplacements(replacements)] : plain;
}

/** A replacement as plain statements, for one event. */
function asStatements({ table, match, columns, rows }: Replacement): Array<{ sql: string; params: unknown[] }> {
  const keys = Object.keys(match);
  const remove = { sql: `DELETE FROM ${table} WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`, params: Object.values(match) };
  if (rows.length === 0) return [remove];
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const insert = { sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${rows.map(() => tuple).join(', ')}`, params: rows.flat() };
  return [remove, insert];
}

/**
 * A batch's replacements on PostgreSQL: per table, the last one per match values wins, and all
 * of them run as a few DELETEs (one per value of the match's other columns) and one INSERT over
 * arrays (a statement per event cost a round trip and a socket write each).
 */
function mergedReplacements(replacements: Replacement[]): Array<{ sql: string; params: unknown[] }> {
  const byTable = new Map<string, Map<string, Replacement>>();
  for (const r of replacements) {
    const shape = `${r.table} ${Object.keys(r.match).join(',')} ${r.columns.join(',')}`;
    let latest = byTable.get(shape);
    if (!latest) byTable.set(shape, (latest = new Map()));
    latest.set(JSON.stringify(Object.values(r.match)), r); // the last one wins
  }
  const out: Array<{ sql: string; params: unknown[] }> = [];
  for (const latest of byTable.values()) {
    const all = [...latest.values()];
    const { table, match, columns } = all[0] as Replacement;
    const [first, ...others] = Object.keys(match) as [string, ...string[]];
    // One DELETE per combination of the other match values (a source, here), each `first =
    // ANY(array) AND other = value`: an index probe per key whatever the planner knows. A join
    // with unnest() of the pairs was planned, without fresh statistics, as a scan of the whole
    // table, or as a probe of every key for every pair (a batch of 1,000 users read its index
    // two million times).
    const byOthers = new Map<string, { values: string[]; firsts: string[] }>();
    for (const r of all) {
      const values = others.map((k) => r.match[k] as string);
      const id = JSON.stringify(values);
      let group = byOthers.get(id);
      if (!group) byOthers.set(id, (group = { values, firsts: [] }));
      group.firsts.push(r.match[first] as string);
    }
    for (const { values, firsts } of byOthers.values())
      out.push({
        sql: `DELETE FROM ${table} WHERE ${[`${first} = ANY(?::text[])`, ...others.map((k) => `${k} = ?`)].join(' AND ')}`,
        params: [arrayLiteral(firsts), ...values],
      });
    const rows = all.flatMap((r) => r.rows);
    if (rows.length === 0) continue;
    // Column types from the values: numbers as bigint (assignment casts narrow them), the rest text.
    const casts = columns.map((_, c) => (rows.some((row) => typeof row[c] === 'number') ? 'bigint[]' : 'text[]'));
    out.push({
      sql: `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${casts.map((t) => `?::${t}`).join(', ')})`,
      params: columns.map((_, c) => arrayLiteral(rows.map((row) => row[c] ?? null))),
    });
  }
  return out;
}

const SQLITE_TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";

/** Index names are not schema-qualified in PostgreSQL: `schema.users_v1` → `users_v1`. */
export const bare = (table: string): string => table.slice(table.lastIndexOf('.') + 1);

/**
 * A projection definition from statement builders: synchronous handlers on SQLite, async on
 * PostgreSQL. `onError` may translate a database error (a unique violation) into a domain error.
 */
export function sqlProjection(
  dialect: Dialect,
  spec: {
    name: string;
    version: number;
    tables: string[];
    setup: (table: TableOf) => Statement[];
    /** Indexes only queries use (`CREATE INDEX IF NOT EXISTS`): built after a long catch-up (ProjectionDefinition.indexes). */
    indexes?: (table: TableOf) => Statement[];
    handlers: Record<string, StatementBuilder>;
    onError?: (error: unknown, event: RecordedEvent) => unknown;
  },
): ProjectionDefinition {
  const { indexes } = spec;
  const fail = (error: unknown, event: RecordedEvent) => {
    throw spec.onError ? spec.onError(error, event) : error;
  };
  const run =
    dialect === 'sqlite'
      ? (statements: Statement[], ctx: ProjectionContext, event?: RecordedEvent) => {
          const db = ctx.tx as Database;
          try {
            for (const s of inOrder(statements, false)) {
              if (s.ifTableExists !== undefined && !prepare(db, SQLITE_TABLE_EXISTS).get(s.ifTableExists)) continue;
              prepare(db, s.sql).run(...(s.params as Param[]));
            }
          } catch (error) {
            if (event) fail(error, event);
            throw error;
          }
        }
      : async (statements: Statement[], ctx: ProjectionContext, event?: RecordedEvent) => {
          const tx = ctx.tx as TransactionSql;
          try {
            // Prepared (postgres.js keeps them per connection): unsafe() otherwise parses and plans
            // every statement on every call, ~30% of a users-view update here.
            // Sent at once: the transaction's one connection runs them in order, and a batch costs
            // one round trip instead of one per statement. The first failure is the one reported.
            const all = inOrder(statements, true);
            const send = (s: Runnable) => tx.unsafe(dollars(s.sql), s.params as never, { prepare: true });
            await Promise.all(all.filter((s) => s.ifTableExists === undefined).map(send));
            // Rare (a forget's clean-up of a superseded version): after the rest, a round trip each.
            for (const s of all.filter((s) => s.ifTableExists !== undefined)) {
              const [found] = await tx.unsafe('SELECT to_regclass($1) IS NOT NULL AS present', [s.ifTableExists as string]);
              if (found?.present) await send(s);
            }
          } catch (error) {
            if (event) fail(error, event);
            throw error;
          }
        };
  const handlers: ProjectionDefinition['handlers'] = {};
  for (const [type, build] of Object.entries(spec.handlers)) {
    handlers[type] = (event, ctx) =>
      run(
        build(event, (t) => ctx.table(t)),
        ctx,
        event,
      );
  }
  // PostgreSQL: a batch of events is one pipeline of statements (see run). A failing batch is
  // re-run event by event (projections.md), so a projection that translates errors per event
  // (onError, the inline uniqueness model) keeps per-event handlers.
  const handleBatch =
    dialect === 'postgres' && !spec.onError
      ? (events: RecordedEvent[], ctx: ProjectionContext) =>
          run(
            events.flatMap((event) => (spec.handlers[event.type] as StatementBuilder)(event, (t) => ctx.table(t))),
            ctx,
          )
      : undefined;
  return {
    name: spec.name,
    version: spec.version,
    tables: spec.tables,
    ...(handleBatch && { handleBatch, types: Object.keys(spec.handlers) }),
    setup: (ctx) =>
      run(
        spec.setup((t) => ctx.table(t)),
        ctx,
      ),
    ...(indexes && {
      indexes: (ctx: ProjectionContext) =>
        run(
          indexes((t) => ctx.table(t)),
          ctx,
        ),
    }),
    handlers,
  };
}

/** Read-side queries on the views (the logical table names, which point at the active version). */
export interface Queries {
  dialect: Dialect;
  /** The name to query a view by. */
  view(table: string): string;
  all<T>(sql: string, params?: Param[]): Promise<T[]>;
}

export function queriesFor(store: EventStore): Queries {
  if (store.backend === 'sqlite') {
    const db = (store as SqliteEventStore).database;
    return {
      dialect: 'sqlite',
      view: (table) => table,
      all: async <T>(sql: string, params: Param[] = []) => prepare(db, sql).all(...params) as T[],
    };
  }
  if (store.backend === 'postgres') {
    const pg = store as PostgresEventStore;
    return {
      dialect: 'postgres',
      view: (table) => `${pg.schema}.${table}`,
      all: async <T>(sql: string, params: Param[] = []) =>
        (await pg.watch(pg.sql.unsafe(dollars(sql), pgParams(params), { prepare: true }))) as unknown as T[],
    };
  }
  throw new Error(`The identity service keeps its views in SQL: use a sqlite: or postgres:// store, not ${store.backend}.`);
}
