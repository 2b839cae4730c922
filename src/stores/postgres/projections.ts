/**
 * Projection state in the PostgreSQL store's schema, through the store's postgres.js pool. A
 * batch's read-model writes and its checkpoint commit in one transaction; the checkpoint row is
 * locked (FOR UPDATE) first, so two runners of one projection never apply an event twice.
 *
 * Inline projections run in the store's append transactions (addInlineHook). Appends of one
 * schema are serialized by the store's advisory lock, so hooks run in position order and see
 * every earlier event committed.
 */
import type { Sql, TransactionSql } from 'postgres';
import type { RecordedEvent } from '../../core/types.js';
import {
  type CheckpointUpdate,
  EventFailure,
  errorMessage,
  errorStack,
  eventFromJson,
  eventToJson,
  type InlineProjection,
  type LeaseRow,
  type ParkedEvent,
  type ProjectionBackend,
  planLeases,
  type StoredCheckpoint,
  SupersededError,
  type TransactOptions,
  versionedTable,
} from '../../projections/backend.js';
import { type KeyedRow, keyedColumnsText, keysRead, toRecorded } from './rows.js';
import { appendLockName } from './schema.js';
import type { PostgresEventStore } from './store.js';
import { isConnectionError } from './watchdog.js';

type PostgresStoreLike = Pick<PostgresEventStore, 'sql' | 'schema' | 'watch' | 'addInlineHook' | 'openSealed'>;

const SCHEMA = (S: string) => `
CREATE TABLE IF NOT EXISTS ${S}.logline_checkpoints (
  name text PRIMARY KEY, kind text NOT NULL, position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${S}.logline_projections (
  name text PRIMARY KEY, active_version integer NOT NULL, switched_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${S}.logline_projection_versions (
  name text NOT NULL, version integer NOT NULL, tables jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS ${S}.logline_parked (
  id bigserial PRIMARY KEY, consumer text NOT NULL, position bigint NOT NULL, event text NOT NULL,
  error text NOT NULL, stack text NOT NULL, attempts integer NOT NULL, parked_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${S}.logline_leases (
  group_name text NOT NULL, partition integer NOT NULL, owner text NOT NULL, expires_at bigint NOT NULL,
  PRIMARY KEY (group_name, partition)
);
CREATE TABLE IF NOT EXISTS ${S}.logline_group_members (
  group_name text NOT NULL, member text NOT NULL, expires_at bigint NOT NULL, PRIMARY KEY (group_name, member)
);`;

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rolls back an early transaction whose events another runner had applied in part (see transact). */
class Overtaken extends Error {}

/** How long a transaction body that saw a connection error waits for begin() to fail by itself. */
const LOST_CONNECTION_GRACE_MS = 1000;

const isLostConnection = (error: unknown): boolean => isConnectionError(error instanceof EventFailure ? error.cause : error);

/**
 * sql.begin whose body does not reject when the transaction's own connection is lost.
 * postgres.js answers a rejected body with ROLLBACK on the same connection; when that connection
 * has already closed, 3.4.9 writes it to a null socket from a timer and the process dies of an
 * uncaught TypeError (porsager/postgres#1154, #1208). The server has rolled the transaction back
 * already, and begin() itself rejects through the connection's close handler. If begin() has not
 * failed within a grace period, the error came from some other connection: roll back as usual.
 */
export function beginSafely<T>(sql: Sql, work: (tx: TransactionSql) => Promise<T>): Promise<T> {
  let settled = false;
  const result = sql.begin(
    (tx) =>
      new Promise<T>((resolve, reject) => {
        work(tx).then(resolve, (error: unknown) => {
          if (!isLostConnection(error)) return reject(error);
          setTimeout(() => settled || reject(error), LOST_CONNECTION_GRACE_MS);
        });
      }),
  ) as Promise<T>;
  const done = () => {
    settled = true;
  };
  result.then(done, done);
  return result;
}

/** Runs an idempotent operation again after a dropped connection: a few times, with backoff. */
async function again<T>(operation: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!isConnectionError(error) || attempt >= 6) throw error;
      await sleep(Math.min(1000, 50 * 2 ** attempt));
    }
  }
}

export async function createPostgresBackend(store: PostgresStoreLike): Promise<ProjectionBackend> {
  const { sql, schema } = store;
  // Every query goes through the store's lost-query watchdog (a killed connection can leave a
  // postgres.js query unsettled forever); idempotent ones are re-run after a dropped connection.
  // Projection transactions are not: the consumer retries the whole batch.
  const query = <T>(run: () => Promise<T>): Promise<T> => again(() => store.watch(run()));
  /** A transaction through the watchdog; a handler's query that died with the connection is the store's failure, not the event's. */
  const watchTransaction = <T>(work: (tx: TransactionSql) => Promise<T>): Promise<T> =>
    store.watch(beginSafely(sql, work)).catch((error: unknown) => {
      throw error instanceof EventFailure && isLostConnection(error) ? error.cause : error;
    });
  const transaction = <T>(work: (tx: TransactionSql) => Promise<T>): Promise<T> => query(() => watchTransaction(work));
  // The store validated the schema name ([a-z_][a-z0-9_]*): safe to use unquoted.
  const S = schema;
  const T = (table: string) => sql.unsafe(`${S}.${table}`);
  const checkpoints = T('logline_checkpoints');
  const projections = T('logline_projections');
  const versions = T('logline_projection_versions');
  const parked = T('logline_parked');
  const leases = T('logline_leases');
  const members = T('logline_group_members');

  await transaction(async (tx) => {
    // Concurrent first users of a schema would race on CREATE TABLE IF NOT EXISTS.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`logline:projections:${schema}`}, 0))`;
    await tx.unsafe(SCHEMA(S));
  });

  /**
   * The work, then the checkpoint's save and the parked event's delete. Those two are sent as
   * soon as the work has sent its first statements (they commit or roll back with it, so their
   * order within the transaction does not matter); the work's own failure is the one reported.
   */
  const runEffects = async (tx: TransactionSql, work: () => unknown, options: TransactOptions): Promise<void> => {
    const working = Promise.resolve(work());
    const after = Promise.all([
      options.checkpoint && save(tx, options.checkpoint),
      options.deleteParked !== undefined && tx`DELETE FROM ${parked} WHERE id = ${options.deleteParked}`,
    ]);
    after.catch(() => {});
    await working;
    await after;
  };

  const save = (q: Sql | TransactionSql, update: CheckpointUpdate) =>
    q`INSERT INTO ${checkpoints} (name, kind, position, updated_at) VALUES (${update.name}, ${update.kind}, ${String(update.position)}, now())
      ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
      WHERE excluded.position > ${checkpoints}.position`;

  const toParked = (row: {
    id: string;
    consumer: string;
    position: string;
    event: string;
    error: string;
    stack: string;
    attempts: number;
    parked_at: string;
  }): ParkedEvent => ({
    id: Number(row.id),
    consumer: row.consumer,
    position: BigInt(row.position),
    event: eventFromJson(row.event),
    error: row.error,
    stack: row.stack,
    attempts: row.attempts,
    parkedAt: row.parked_at,
  });

  const backend: ProjectionBackend = {
    kind: 'postgres',
    transactional: true,
    qualify: (table) => `${S}.${table}`,
    async readCheckpoint(name) {
      const [row] = await query(() => sql<{ position: string }[]>`SELECT position FROM ${checkpoints} WHERE name = ${name}`);
      return row ? BigInt(row.position) : undefined;
    },
    async listCheckpoints() {
      const rows = await query(
        () => sql<{ name: string; kind: string; position: string; updated_at: string }[]>`
        SELECT name, kind, position, to_char(updated_at AT TIME ZONE 'UTC', ${sql.unsafe(ISO)}) AS updated_at
        FROM ${checkpoints} ORDER BY name`,
      );
      return rows.map(
        (row): StoredCheckpoint => ({
          name: row.name,
          kind: row.kind as StoredCheckpoint['kind'],
          position: BigInt(row.position),
          updatedAt: row.updated_at,
        }),
      );
    },
    async saveCheckpoint(update) {
      await query(() => save(sql, update));
    },
    async deleteCheckpoint(name) {
      await query(() => sql`DELETE FROM ${checkpoints} WHERE name = ${name}`);
    },
    async transact(work, options) {
      // Not re-run here: the consumer retries the whole batch (and applies only what is new).
      const attempt = (early: boolean) =>
        watchTransaction(async (tx) => {
          // Read models can be rebuilt from the log: their commits need not wait for the WAL flush.
          // A server crash may lose the last few, effects and checkpoint together: redone, still once.
          const head = Promise.all([
            tx`SET LOCAL synchronous_commit = off`,
            tx<{ active: number | null; position: string | null }[]>`
            WITH locked AS (
              SELECT position FROM ${checkpoints} WHERE name = ${options.checkpoint?.name ?? ''} FOR UPDATE
            )
            SELECT (SELECT active_version FROM ${projections} WHERE name = ${options.guard?.projection ?? ''}) AS active,
                   (SELECT position FROM locked) AS position`,
          ]);
          // Early (options.from): the work's statements and the checkpoint's save go out right behind
          // the lock, in the same pipeline, so a batch costs BEGIN, one round trip and COMMIT. The
          // server runs them in order, so they run under the lock. Every promise is awaited below
          // or given a handler here, so none can end as an unhandled rejection.
          const effects = early ? runEffects(tx, () => work(tx, undefined), options) : undefined;
          effects?.catch(() => {});
          const [, [row]] = await head;
          if (options.guard && row?.active != null && row.active > options.guard.version) {
            throw new SupersededError(options.guard.projection, row.active);
          }
          const stored = options.checkpoint && row?.position != null ? BigInt(row.position) : undefined;
          if (!effects) return runEffects(tx, () => work(tx, stored), options);
          // Another runner applied some of these events first: roll back and apply only what is new.
          if (stored !== undefined && options.from !== undefined && stored >= options.from) throw new Overtaken();
          await effects;
        });
      try {
        await attempt(options.from !== undefined && options.checkpoint !== undefined);
      } catch (error) {
        if (!(error instanceof Overtaken)) throw error;
        await attempt(false);
      }
    },
    async park(input, advance) {
      await transaction(async (tx) => {
        // Once per consumer and position: a park re-run after a lost commit adds no second row.
        await tx`INSERT INTO ${parked} (consumer, position, event, error, stack, attempts)
                 SELECT ${input.consumer}, ${String(input.event.position)}, ${eventToJson(input.event)},
                        ${errorMessage(input.error)}, ${errorStack(input.error)}, ${input.attempts}
                 WHERE NOT EXISTS (SELECT 1 FROM ${parked} WHERE consumer = ${input.consumer} AND position = ${String(input.event.position)})`;
        if (advance) await save(tx, advance);
      });
    },
    async listParked(consumer) {
      const rows = await query(
        () => sql<Parameters<typeof toParked>[0][]>`
        SELECT id, consumer, position, event, error, stack, attempts, to_char(parked_at AT TIME ZONE 'UTC', ${sql.unsafe(ISO)}) AS parked_at
        FROM ${parked} ${consumer === undefined ? sql`` : sql`WHERE consumer = ${consumer}`} ORDER BY id`,
      );
      return rows.map(toParked);
    },
    async deleteParked(id) {
      await query(() => sql`DELETE FROM ${parked} WHERE id = ${id}`);
    },
    async activeVersion(projection) {
      const [row] = await query(
        () => sql<{ active_version: number }[]>`SELECT active_version FROM ${projections} WHERE name = ${projection}`,
      );
      return row?.active_version;
    },
    async prepareVersion(projection, version, tables, setup) {
      return transaction(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`logline:projection:${schema}:${projection}`}, 0))`;
        const [known] = await tx`SELECT 1 FROM ${versions} WHERE name = ${projection} AND version = ${version}`;
        if (known) return false;
        await setup(tx);
        await tx`INSERT INTO ${versions} (name, version, tables) VALUES (${projection}, ${version}, ${JSON.stringify(tables)}::jsonb)`;
        return true;
      });
    },
    async activate(projection, version, tables) {
      return transaction(async (tx) => {
        // The projection's lock, not FOR UPDATE: at a first start there is no row to lock yet, and
        // two processes would both CREATE VIEW (one failing on the catalog's unique index).
        await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`logline:projection:${schema}:${projection}`}, 0))`;
        const [row] = await tx<{ active_version: number }[]>`SELECT active_version FROM ${projections} WHERE name = ${projection}`;
        const previous = row?.active_version;
        if (previous !== undefined && previous > version) throw new SupersededError(projection, previous);
        // Another process activated this version first: its views are in place.
        if (previous === version) return previous;
        // DDL is transactional: readers see the old view or the new one, never neither.
        for (const table of tables) {
          await tx.unsafe(`DROP VIEW IF EXISTS ${S}.${table}`);
          await tx.unsafe(`CREATE VIEW ${S}.${table} AS SELECT * FROM ${S}.${versionedTable(table, version)}`);
        }
        await tx`INSERT INTO ${projections} (name, active_version) VALUES (${projection}, ${version})
                 ON CONFLICT (name) DO UPDATE SET active_version = excluded.active_version, switched_at = now()`;
        return previous;
      });
    },
    async dropVersion(projection, version) {
      await transaction(async (tx) => {
        const [row] = await tx<{ tables: string[] }[]>`SELECT tables FROM ${versions} WHERE name = ${projection} AND version = ${version}`;
        const tables = typeof row?.tables === 'string' ? (JSON.parse(row.tables) as string[]) : (row?.tables ?? []);
        for (const table of tables) await tx.unsafe(`DROP TABLE IF EXISTS ${S}.${versionedTable(table, version)}`);
        await tx`DELETE FROM ${versions} WHERE name = ${projection} AND version = ${version}`;
        await tx`DELETE FROM ${checkpoints} WHERE name = ${`${projection}@v${version}`}`;
      });
    },
    async balanceLeases(group, member, partitions, ttlMs, now) {
      return transaction(async (tx) => {
        // One balancer per group at a time: plans never cross.
        await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`logline:group:${schema}:${group}`}, 0))`;
        await tx`INSERT INTO ${members} (group_name, member, expires_at) VALUES (${group}, ${member}, ${now + ttlMs})
                 ON CONFLICT (group_name, member) DO UPDATE SET expires_at = excluded.expires_at`;
        await tx`DELETE FROM ${members} WHERE group_name = ${group} AND expires_at <= ${now}`;
        const live = (await tx<{ member: string }[]>`SELECT member FROM ${members} WHERE group_name = ${group}`).map((r) => r.member);
        const rows = await tx<{ partition: number; owner: string; expires_at: string }[]>`
          SELECT partition, owner, expires_at FROM ${leases} WHERE group_name = ${group}`;
        const current = rows.map((r): LeaseRow => ({ partition: r.partition, owner: r.owner, expiresAt: Number(r.expires_at) }));
        const { keep, claim, release } = planLeases(current, live, member, partitions, now);
        const mine = [...keep, ...claim, ...release];
        if (mine.length) {
          await tx`INSERT INTO ${leases} (group_name, partition, owner, expires_at)
                   SELECT ${group}, p, ${member}, ${now + ttlMs} FROM unnest(${`{${mine.join(',')}}`}::int[]) AS p
                   ON CONFLICT (group_name, partition) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`;
        }
        return { owned: [...keep, ...claim].sort((a, b) => a - b), surplus: release };
      });
    },
    async releaseLeases(group, member, partitions) {
      if (!partitions.length) return;
      await query(
        () => sql`DELETE FROM ${leases} WHERE group_name = ${group} AND owner = ${member}
                AND partition = ANY(${`{${partitions.join(',')}}`}::int[])`,
      );
    },
    async saveGroupCheckpoints(group, member, partitions, position, now) {
      if (!partitions.length) return [];
      return transaction(async (tx) => {
        const held = (
          await tx<{ partition: number }[]>`
            SELECT partition FROM ${leases} WHERE group_name = ${group} AND owner = ${member} AND expires_at > ${now}
            AND partition = ANY(${`{${partitions.join(',')}}`}::int[]) FOR UPDATE`
        ).map((r) => r.partition);
        for (const partition of held) await save(tx, { name: `${group}#${partition}`, kind: 'group', position });
        return held;
      });
    },
    async leaveGroup(group, member) {
      await transaction(async (tx) => {
        await tx`DELETE FROM ${leases} WHERE group_name = ${group} AND owner = ${member}`;
        await tx`DELETE FROM ${members} WHERE group_name = ${group} AND member = ${member}`;
      });
    },
    async listLeases(group) {
      const rows = await query(
        () => sql<{ group_name: string; partition: number; owner: string; expires_at: string }[]>`
          SELECT group_name, partition, owner, expires_at FROM ${leases}
          ${group === undefined ? sql`` : sql`WHERE group_name = ${group}`} ORDER BY group_name COLLATE "C", partition`,
      );
      return rows.map((r) => ({ group: r.group_name, partition: r.partition, owner: r.owner, expiresAt: Number(r.expires_at) }));
    },
    attachInline: (projection) => attachPostgresInline(store, backend, projection),
  };
  return backend;
}

/**
 * Inline projection on PostgreSQL: a hook in every append transaction that first applies the
 * events it missed (appended by processes without the hook, or before it was attached), then
 * the append's own, and moves the checkpoint; a failure fails the append.
 */
async function attachPostgresInline(
  store: PostgresStoreLike,
  backend: ProjectionBackend,
  inline: InlineProjection,
): Promise<{ detach(): void } | undefined> {
  const { advance, apply, key, guard: guardOf, wants } = inline;
  const { sql, schema } = store;
  const S = schema;
  // With each sealed event's key: opening the gap asks the pool nothing. The catch-up can hold
  // the pool's only connection (poolSize 1), and a key lookup queued behind it would never run.
  const columns = sql.unsafe(keyedColumnsText(S));
  const events = sql.unsafe(`${S}.events`);
  const checkpoints = sql.unsafe(`${S}.logline_checkpoints`);
  const projections = sql.unsafe(`${S}.logline_projections`);

  /**
   * Applies everything after the stored checkpoint up to `through` plus `own`, inside `tx`.
   * Returns undefined, with nothing applied, when an event this append did not write fails: it is
   * not this append's fault, and the consumer's retry/park policy deals with it.
   */
  const catchUp = async (tx: TransactionSql, own: RecordedEvent[], through: bigint | undefined): Promise<bigint | undefined> => {
    // Sent together (postgres.js pipelines them): one round trip in every append it runs in.
    const [[active], [row]] = await Promise.all([
      tx<{ active_version: number }[]>`SELECT active_version FROM ${projections} WHERE name = ${guardOf.projection}`,
      tx<{ position: string }[]>`SELECT position FROM ${checkpoints} WHERE name = ${key} FOR UPDATE`,
    ]);
    if (active && active.active_version > guardOf.version) throw new SupersededError(guardOf.projection, active.active_version);
    const stored = row ? BigInt(row.position) : 0n;
    const first = own[0]?.position;
    const gapRows =
      first === undefined || first - 1n > stored
        ? ((await tx`SELECT ${columns} FROM ${events} WHERE position > ${String(stored)}
            ${first === undefined ? sql`` : sql`AND position < ${String(first)}`} ORDER BY position`.values()) as unknown as KeyedRow[])
        : [];
    // Most appends have no gap: nothing to open, no await added to the append's transaction.
    const gap = gapRows.length ? await store.openSealed(gapRows.map(toRecorded), keysRead(gapRows)) : [];
    const todo = [...gap, ...own].filter((event) => event.position > stored);
    const last = todo.length ? (todo[todo.length - 1] as RecordedEvent).position : stored;
    const missed = gap.filter((event) => event.position > stored && wants(event));
    if (missed.length > 0) {
      try {
        // Its own savepoint (and postgres.js scope): a failure rolls back only these.
        await tx.savepoint(async (sp) => {
          await apply(sp, missed);
        });
      } catch (error) {
        if (!(error instanceof EventFailure) || isLostConnection(error)) throw error;
        return undefined;
      }
    }
    try {
      await apply(
        tx,
        own.filter((event) => event.position > stored && wants(event)),
      );
    } catch (error) {
      throw error instanceof EventFailure ? error.cause : error;
    }
    const position = through !== undefined && through > last ? through : last;
    await tx`INSERT INTO ${checkpoints} (name, kind, position, updated_at) VALUES (${key}, 'projection', ${String(position)}, now())
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
             WHERE excluded.position > ${checkpoints}.position`;
    return position;
  };

  let committedTarget = -1n;
  let polling = false;
  // The hook runs before COMMIT; publish the position once the checkpoint row shows it.
  const publish = (position: bigint) => {
    if (position > committedTarget) committedTarget = position;
    if (polling) return;
    polling = true;
    void (async () => {
      for (let attempt = 0; attempt < 200; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, attempt === 0 ? 0 : 5));
        const stored = await backend.readCheckpoint(key).catch(() => undefined);
        if (stored !== undefined) advance(stored);
        if (stored !== undefined && stored >= committedTarget) break;
      }
      polling = false;
    })();
  };

  let detached = false;
  const detach = () => {
    detached = true;
    removeHook();
  };
  const removeHook = store.addInlineHook(async (tx, own) => {
    // The appends of a batch share one copy of the hook list: a detached hook is still called.
    if (detached) return;
    try {
      const position = await catchUp(tx, own, undefined);
      if (position !== undefined) return publish(position);
      detach();
      setImmediate(inline.fellBehind);
    } catch (error) {
      // A newer version is active: leave the append alone; the projection stops.
      if (!(error instanceof SupersededError)) throw error;
      setImmediate(inline.superseded);
    }
  });
  // Close the gap since the async catch-up, under the appends' lock so no append is half-done.
  let position: bigint | undefined;
  try {
    position = await store.watch(
      beginSafely(sql, async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtextextended(${appendLockName(schema)}, 0))`;
        return catchUp(tx, [], undefined);
      }),
    );
  } catch (error) {
    // No half-attached hook: the caller may try the whole hand-over again.
    detach();
    throw error;
  }
  if (position === undefined) {
    // An event since the async catch-up fails: the consumer reaches it next, with its policy.
    detach();
    return undefined;
  }
  advance(position);
  return { detach };
}
