/**
 * The PostgreSQL store on postgres.js (an optional peer dependency, imported on first open).
 *
 * - One schema per store (per tenant), migrated on open (see schema.ts).
 * - Appends are coalesced: while one commit is in flight, new appends queue; the next commit
 *   carries all of them in ONE statement (`append_batch`): the appends are decided in call order,
 *   each expected version against the appends before it (one stream may appear many times), all
 *   rows go in with one multi-row INSERT, and each caller is answered after the shared commit.
 *   A lone caller pays one round trip.
 * - Call order: every append statement goes through one writer connection, pipelined, so the
 *   server runs the batches in the order they were taken from the queue. That connection pins
 *   `read committed`, which the append statement needs whatever the database's default.
 * - Global order without skips (docs/postgres.md): `append_batch` holds a per-schema advisory lock from
 *   position assignment to commit, so positions become visible in order; readers need no filter.
 * - Live subscribers are woken by LISTEN/NOTIFY (one listener connection per store) and by local
 *   commits; a slow poll is the fallback. Reads retry across dropped connections.
 *
 * Beside it: rows.ts (row ↔ RecordedEvent), batching.ts (what one coalesced commit carries and its
 * parameters), arrays.ts (array literals), watchdog.ts (lost queries, connection errors), url.ts
 * (URL options), schema.ts (migrations), projections.ts (the projection backend).
 */
import type Postgres from 'postgres';
import type { Sql, TransactionSql } from 'postgres';
import { DriverMissingError, StoreClosedError, WrongExpectedVersionError } from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
import { assertMasterKey, SUBJECTS_STREAM, storePersonalData } from '../../core/personal-data.js';
import { AppendSignal, liveReadAll, pagedReadAll } from '../../core/reading.js';
import { recordCommit, type Span, traceAppend } from '../../core/tracing.js';
import {
  type AppendOptions,
  type AppendResult,
  DEFAULT_LIMITS,
  type EventStore,
  type ExpectedVersion,
  type JsonValue,
  type ListStreamsOptions,
  type NewEvent,
  type ReadAllOptions,
  type ReadOptions,
  type RecordedEvent,
  type Snapshot,
  type StoreLimits,
  type StoreStats,
  type StreamInfo,
  type SubscribeOptions,
} from '../../core/types.js';
import {
  assertExpectedVersion,
  assertStreamId,
  type NormalizedReadAll,
  normalizeReadAllOptions,
  normalizeReadOptions,
  type PreparedEvent,
  prepareEvents,
} from '../../core/validation.js';
import type { ProjectionSupport } from '../../projections/backend.js';
import { arrayLiteral } from './arrays.js';
import { type BatchRow, batchParams, MAX_BYTES_PER_COMMIT, MAX_EVENTS_PER_COMMIT, type Outcome, type PendingAppend } from './batching.js';
import { coalescedPerTurn } from './coalesce.js';
import { readPool } from './pool.js';
import { postgresRetention, visibleCondition } from './retention.js';
import { COLUMNS, ISO, type KeyedRow, keyedColumnsText, keysRead, MAX_INT, type Row, toRecorded } from './rows.js';
import { appendLockName, CATEGORY_SQL, channelName, migrate } from './schema.js';
import { createPostgresKeyTable } from './subject-keys.js';
import { parseUrl } from './url.js';
import { ConnectionWatch, isConnectionError } from './watchdog.js';

export interface PostgresStoreOptions {
  /** postgres://user:pass@host:5432/db; the query parameters `schema`, `poolSize` and `pollMs` are read and removed. */
  url: string;
  /** The schema holding this store's tables (one per tenant). Default: the URL's `schema`, else 'logline'. */
  schema?: string;
  /**
   * Connections in the read pool (the writer connection and the LISTEN connection come on top),
   * each filled up to 16 queries at once before the next is used. Default: the URL's `poolSize`, else 10.
   */
  poolSize?: number;
  /** Longest a live subscriber sleeps without a wake-up before reading again. Default 1000 ms. */
  pollMs?: number;
  limits?: Partial<StoreLimits>;
  /**
   * Coalesced batches in flight at once (default 2), pipelined on the writer connection: the next
   * batch's statement is on the server when the previous one commits, so no round trip in between.
   */
  commitsInFlight?: number;
  /** Wraps each subject key (AES-256-GCM, 32 bytes); see docs/lifecycle.md#forget-a-person. */
  masterKey?: Uint8Array;
  /** For tests only: runs inside every append transaction, just before COMMIT (e.g. `pg_sleep`). */
  testHooks?: { beforeCommit?: (tx: TransactionSql) => Promise<void> };
}

/**
 * Runs inside the append transaction, after the events are inserted (same-transaction read
 * models). It gets the events of one append, or of several appends of one coalesced commit, in
 * position order; when it throws for several, they are run again one append at a time, so it may
 * see an event twice, only the last time for keeps. It should write only through `tx`.
 */
export type PostgresInlineHook = (tx: TransactionSql, events: RecordedEvent[]) => Promise<void>;

export interface PostgresEventStore extends EventStore, ProjectionSupport {
  readonly backend: 'postgres';
  /** The postgres.js instance (pool) the store uses; share it for read models and checkpoints. */
  readonly sql: Sql;
  /** The schema holding `events`, `streams`, `snapshots` and `migrations`. */
  readonly schema: string;
  /**
   * Registers a hook that runs inside every append transaction after the insert: once over the
   * events of all the commit's appends, and when it throws, again for each append in its own
   * savepoint, so it fails only the append it threw for (nothing of that one is stored).
   * Returns an unregister function.
   */
  addInlineHook(hook: PostgresInlineHook): () => void;
  /**
   * Settles `query` with a CONNECTION_CLOSED error if postgres.js loses it with a killed
   * connection (see ConnectionWatch). For code that shares the pool: read models, checkpoints.
   */
  watch<T>(query: Promise<T>): Promise<T>;
  /** Opens the personal fields of events read from the table directly (inline projections do). */
  openSealed(events: RecordedEvent[], keysRead?: Map<string, { key: Uint8Array | undefined }>): Promise<RecordedEvent[]>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function loadDriver(): Promise<typeof Postgres> {
  try {
    return (await import('postgres')).default;
  } catch (error) {
    throw new DriverMissingError('postgres', 'postgres', error);
  }
}

/** A postgres.js option its types and README leave out (its src/index.js reads it; default 100). */
const PIPELINE = { max_pipeline: 10_000 };

export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresEventStore> {
  assertMasterKey(options.masterKey);
  const { url, schema, poolSize, pollMs } = parseUrl(options);
  const postgres = await loadDriver();
  const connections = new ConnectionWatch();
  const connect = (max: number, settings: Record<string, string> = {}) =>
    postgres(url, {
      onclose: connections.closed,
      max,
      onnotice: () => {},
      // No type-fetching query on each (re)connect: fewer states for a connection killed mid-startup.
      // Arrays are passed as JSON text instead.
      fetch_types: false,
      // postgres.js sends at most 100 queries ahead of their answers (default) and each later one
      // only as an answer comes back: a projection batch of 500 statements then took one wake-up
      // of this process per statement past the 100th, and behind a busy event loop the identity
      // service's users view fell ever further behind 1k writes/s (docs/benchmarks.md). The
      // socket's own backpressure still holds queries back when the server does not read.
      ...PIPELINE,
      // Lets operators (and tests) find this store's sessions in pg_stat_activity.
      connection: { application_name: `logline:${schema}`, ...settings },
    });
  // Instances of one connection, not one pool: see pool.ts for the driver issue this avoids.
  const sql = readPool(Array.from({ length: poolSize }, () => connect(1)));
  // One connection for every append: postgres.js pipelines its queries, so the server runs the
  // batches in the order they were sent (call order). `append_batch` reads the head after taking
  // the ordering lock, which needs a fresh snapshot per statement: read committed, pinned here
  // because a database may default to repeatable read or serializable.
  const newWriter = () => connect(1, { default_transaction_isolation: 'read committed' });
  try {
    await migrate(sql, schema);
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    if (isConnectionError(error)) throw new StoreUnavailable(error);
    throw error;
  }
  return createPostgresStore(sql, newWriter, schema, pollMs, options, connections);
}

class StoreUnavailable extends Error {
  constructor(cause: unknown) {
    super(`PostgreSQL is unreachable: ${String((cause as Error)?.message ?? cause)}`, { cause });
  }
}

function createPostgresStore(
  sql: Sql,
  newWriter: () => Sql,
  schema: string,
  pollMs: number,
  options: PostgresStoreOptions,
  connections: ConnectionWatch,
): PostgresEventStore {
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const signal = new AppendSignal();
  const inlineHooks = new Set<PostgresInlineHook>();
  const beforeCommit = options.testHooks?.beforeCommit;
  const commitsInFlight = Math.max(1, options.commitsInFlight ?? 2);
  const S = sql(schema);
  const columns = sql.unsafe(COLUMNS);
  /** The events table, for SQL built as text (the schema name is a validated identifier). */
  const table = `"${schema}".events`;
  /** COLUMNS and each sealed event's key: a page opens without a second query (rows.ts). */
  const keyedText = keyedColumnsText(`"${schema}"`);
  const keyedColumns = sql.unsafe(keyedText);
  const { masterKey } = options;
  const keyTable = createPostgresKeyTable(sql, schema);
  const personal = storePersonalData(keyTable, masterKey, () => assertOpen());
  const openSealed = personal.open;
  let closed = false;
  /** Set once the pool is ending: connection errors are final from then on. */
  let sqlEnded = false;
  let queue: PendingAppend[] = [];
  let writer = newWriter();
  /**
   * A pool of one connection is stuck for good when postgres.js loses a query on it (see
   * ConnectionWatch; its connect timeout is 30 s): a lost query gets a new writer connection.
   */
  const replaceWriter = (stuck: Sql): void => {
    if (stuck !== writer || sqlEnded) return;
    writer = newWriter();
    stuck.end({ timeout: 0 }).catch(() => {});
  };
  /** Commit lanes at work; each takes the next batch from the queue when its last one is answered. */
  const lanes = new Set<Promise<void>>();
  /** Settles when the batch sent last has (see runBatch). */
  let lastBatch: Promise<unknown> = Promise.resolve();

  function assertOpen(): void {
    if (closed) throw new StoreClosedError('postgres');
  }

  // ---- appends -------------------------------------------------------------------------------

  /**
   * The next batch: the longest prefix of the queue (call order) that is bounded in size and
   * carries each event id at most once. The same stream may come many times: `append_batch`
   * decides the appends one after the other. An id seen earlier in the batch (a retry queued
   * behind its original) starts the next batch, where it is found stored.
   */
  const takeBatch = (): PendingAppend[] => {
    const ids = new Set<string>();
    let events = 0;
    let bytes = 0;
    let end = 0;
    for (; end < queue.length; end++) {
      const pending = queue[end] as PendingAppend;
      const fits =
        end === 0 ||
        (events + pending.events.length <= MAX_EVENTS_PER_COMMIT &&
          bytes + pending.bytes <= MAX_BYTES_PER_COMMIT &&
          !pending.events.some((e) => ids.has(e.id)));
      if (!fits) break;
      for (const e of pending.events) ids.add(e.id);
      events += pending.events.length;
      bytes += pending.bytes;
    }
    const batch = queue.slice(0, end);
    queue = queue.slice(end);
    return batch;
  };

  /**
   * One `append_batch` call: a row per append. A result with fewer rows came from a connection
   * killed mid-answer (postgres.js can settle such a query with what it had): the batch may or may
   * not have committed, so it is treated like the lost connection it is and re-sent, never
   * reported as failed.
   */
  const callBatch = async (q: Sql | TransactionSql, batch: PendingAppend[]): Promise<BatchRow[]> => {
    const [streams, expected, counts, ids, types, at, data, metadata] = batchParams(batch);
    const rows = await q<
      BatchRow[]
    >`SELECT * FROM ${S}.append_batch(${streams}, ${expected}, ${counts}, ${ids}, ${types}, ${at}, ${data}, ${metadata})`;
    if (rows.length !== batch.length) {
      throw Object.assign(new Error(`append_batch answered ${rows.length} rows for ${batch.length} appends`), {
        code: 'CONNECTION_CLOSED',
        lost: true,
      });
    }
    return rows;
  };

  const outcomeOf = (pending: PendingAppend, row: BatchRow): Outcome => {
    if (row.status === 'ok') return { ok: true, result: { streamVersion: row.version, position: BigInt(row.last_position) } };
    if (row.status === 'stored') return { ok: 'stored' };
    return { ok: false, error: new WrongExpectedVersionError(pending.stream, pending.expected, row.actual) };
  };

  /** Builds the RecordedEvents of an append that just went in, for inline hooks. */
  const recordedOf = (pending: PendingAppend, row: BatchRow): RecordedEvent[] => {
    const n = pending.events.length;
    const last = BigInt(row.last_position);
    return pending.events.map((e, i) => ({
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      occurredAt: e.occurredAt ?? row.recorded_at,
      streamId: pending.stream,
      streamVersion: row.version - n + 1 + i,
      position: last - BigInt(n - 1 - i),
      recordedAt: row.recorded_at,
    }));
  };

  /**
   * With inline hooks, a batch of several appends first goes in whole: one append_batch call and
   * each hook once over all the events, in a savepoint. Undefined, with nothing of it kept, when
   * that failed for a reason other than the connection: then oneAtATime finds the append to
   * blame. The ordering lock is taken first, outside the savepoint (rolling the savepoint back
   * would release it), so the retry keeps the batch's place in the log's order.
   */
  const allAtOnce = async (tx: TransactionSql, batch: PendingAppend[], hooks: PostgresInlineHook[]): Promise<Outcome[] | undefined> => {
    if (batch.length < 2) return undefined;
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${appendLockName(schema)}, 0))`;
    try {
      return await tx.savepoint(async (sp) => {
        const rows = (await callBatch(sp, batch)) as BatchRow[];
        const outcomes = batch.map((pending, i) => outcomeOf(pending, rows[i] as BatchRow));
        const recorded = batch.flatMap((pending, i) =>
          (outcomes[i] as Outcome).ok === true && pending.events.length > 0 ? recordedOf(pending, rows[i] as BatchRow) : [],
        );
        if (recorded.length > 0) for (const hook of hooks) await hook(sp, recorded);
        return outcomes;
      });
    } catch (error) {
      if (isConnectionError(error) || (error as { lost?: boolean }).lost) throw error;
      return undefined;
    }
  };

  /** Each append in its own savepoint, its hooks over its own events: a failure fails that append only. */
  const oneAtATime = async (tx: TransactionSql, batch: PendingAppend[], hooks: PostgresInlineHook[]): Promise<Outcome[]> => {
    const outcomes: Outcome[] = [];
    for (const pending of batch) {
      try {
        outcomes.push(
          await tx.savepoint(async (sp) => {
            const [row] = (await callBatch(sp, [pending])) as [BatchRow];
            const outcome = outcomeOf(pending, row);
            if (outcome.ok === true && pending.events.length > 0) {
              const recorded = recordedOf(pending, row);
              for (const hook of hooks) await hook(sp, recorded);
            }
            return outcome;
          }),
        );
      } catch (error) {
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  };

  /** One transaction for the whole batch. Throws only when the transaction as a whole failed. */
  const commitBatch = async (batch: PendingAppend[], via: Sql): Promise<Outcome[]> => {
    if (inlineHooks.size === 0 && !beforeCommit) {
      // The common case: one statement, one round trip, its own implicit transaction.
      const rows = await callBatch(via, batch);
      return batch.map((pending, i) => outcomeOf(pending, rows[i] as BatchRow));
    }
    // The writer is one connection, so this transaction also waits for the batches sent before it.
    return (await via.begin(async (tx) => {
      let outcomes: Outcome[];
      if (inlineHooks.size === 0) {
        const rows = await callBatch(tx, batch);
        outcomes = batch.map((pending, i) => outcomeOf(pending, rows[i] as BatchRow));
      } else {
        const hooks = [...inlineHooks];
        outcomes = (await allAtOnce(tx, batch, hooks)) ?? (await oneAtATime(tx, batch, hooks));
      }
      if (beforeCommit) await beforeCommit(tx);
      return outcomes;
    })) as Outcome[];
  };

  /** Answers an append whose ids are already stored: an exact retry gets the original result. */
  const resolveStored = async (pending: PendingAppend, attempt = 1): Promise<Outcome> => {
    try {
      // = ANY(array) is an index probe whatever the statistics say (an IN over a JSON set was planned as a scan of events).
      const ids = arrayLiteral(pending.events.map((e) => e.id as string));
      const rows = (await connections.watch(
        sql`SELECT ${columns} FROM ${S}.events WHERE id = ANY(${ids}::uuid[])`.values(),
      )) as unknown as Row[];
      const stored = await openSealed(rows.map(toRecorded));
      return { ok: true, result: resolveRetry(pending.stream, pending.expected, pending.events, stored) };
    } catch (error) {
      if (isConnectionError(error) && attempt < 4 && !sqlEnded) {
        await sleep(50 * attempt);
        return resolveStored(pending, attempt + 1);
      }
      return { ok: false, error };
    }
  };

  /**
   * Commits one batch. `previous` settles when the batch sent before this one has: a batch is
   * re-sent only after that, so retries keep call order too.
   */
  const runBatch = async (batch: PendingAppend[], previous: Promise<unknown>): Promise<Outcome[]> => {
    for (let attempt = 1; ; attempt++) {
      const via = writer;
      try {
        return await connections.watch(commitBatch(batch, via));
      } catch (error) {
        await previous;
        if ((error as { lost?: boolean }).lost) replaceWriter(via);
        // The connection died mid-commit, so the batch may or may not have landed. Re-sending is
        // safe: appends that did land come back as 'stored' and resolve as idempotent retries.
        if (isConnectionError(error) && attempt < 4 && !sqlEnded) {
          await sleep(50 * attempt);
          continue;
        }
        if (batch.length > 1 && !isConnectionError(error)) {
          // Something in one append broke the shared statement: run them alone so it fails alone.
          // (A batch sent after this one may have committed meanwhile: the one exception to call
          // order, for appends the database refused as a whole, e.g. an occurredAt out of its range.)
          const outcomes: Outcome[] = [];
          for (const pending of batch) outcomes.push(...(await runBatch([pending], previous)));
          return outcomes;
        }
        return batch.map(() => ({ ok: false, error }));
      }
    }
  };

  /** Starts a commit lane if one is free: at most `commitsInFlight` batches are in flight. */
  const flush = (): void => {
    if (lanes.size >= commitsInFlight || queue.length === 0) return;
    const lane: Promise<void> = flushQueue().finally(() => {
      lanes.delete(lane);
      // An append queued by a caller resumed in the last round (it saw every lane busy).
      flush();
    });
    lanes.add(lane);
  };

  const flushQueue = async (): Promise<void> => {
    // Let every append requested in this turn of the event loop join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (queue.length) {
      const batch = takeBatch();
      const batchEvents = batch.reduce((sum, pending) => sum + pending.events.length, 0);
      for (const pending of batch) recordCommit(pending.span, batch.length, batchEvents);
      const running = runBatch(batch, lastBatch);
      lastBatch = running.catch(() => {});
      const outcomes = await running;
      let head = 0n;
      for (const [i, pending] of batch.entries()) {
        let outcome = outcomes[i] as Outcome;
        if (outcome.ok === 'stored') outcome = await resolveStored(pending);
        if (outcome.ok === true) {
          if (pending.events.length > 0 && outcome.result.position > head) head = outcome.result.position;
          pending.resolve(outcome.result);
        } else if (outcome.ok === false) pending.reject(await retention.appendError(outcome.error, pending.stream));
      }
      if (head > 0n) signal.notifyThrough(head);
    }
  };

  // ---- reads ---------------------------------------------------------------------------------

  const retention = postgresRetention(sql, schema, () => assertOpen());
  // Events that retention settings or deletes hide are left out of every read (retention.ts).
  const visibleText = visibleCondition(`"${schema}"`);
  const visible = sql.unsafe(visibleText);

  /**
   * A page of $all (docs/store.md, categories): a category walks its index; types without a
   * category take each type's first `limit` positions (from its index, or from the log for a
   * type that fills most of it) and fetch the first `limit` of those by position: an IN list
   * would sort every match after `after` for each page. A stream prefix alone filters the log.
   * A category or type page is sent unprepared, so it is planned for its own values: a prepared
   * statement's generic plan assumes an average category or type and, once PostgreSQL switches
   * to it, walks the whole log to find a rare one.
   */
  const readPage = async (after: bigint, limit: number, filter: NormalizedReadAll): Promise<RecordedEvent[]> => {
    assertOpen();
    const params: unknown[] = [after.toString(), limit];
    const param = (value: unknown) => `$${params.push(value)}`;
    const prefix = filter.streamPrefix ? `AND starts_with(stream_id, ${param(filter.streamPrefix)})` : '';
    // An export of sealed events (filter.sealed) opens nothing, so it needs no keys.
    const selected = filter.sealed ? COLUMNS : keyedText;
    let text: string;
    if (filter.types && !filter.category) {
      const perType = filter.types.map(
        (type) =>
          `(SELECT position FROM ${table} WHERE type = ${param(type)} AND position > $1 ${prefix} AND ${visibleText} ORDER BY position LIMIT $2)`,
      );
      text = `SELECT ${selected} FROM ${table}
              WHERE position = ANY(ARRAY(SELECT position FROM (${perType.join(' UNION ALL ')}) AS p ORDER BY 1 LIMIT $2))
              ORDER BY position`;
    } else {
      const category = filter.category ? `AND ${CATEGORY_SQL} = ${param(filter.category)}` : '';
      const types = filter.types ? `AND type IN (SELECT json_array_elements_text(${param(JSON.stringify(filter.types))}::text::json))` : '';
      text = `SELECT ${selected} FROM ${table} WHERE position > $1 ${category} ${types} ${prefix} AND ${visibleText} ORDER BY position LIMIT $2`;
    }
    const prepare = !filter.category && !filter.types;
    const rows = (await connections.watch(sql.unsafe(text, params as never[], { prepare }).values())) as unknown as KeyedRow[];
    const page = rows.map(toRecorded);
    return filter.sealed ? page : openSealed(page, keysRead(rows));
  };

  /** Forward pages of streams, read together when asked for in the same turn (coalesce.ts). */
  const forwardPage = coalescedPerTurn(async (reads: Array<{ stream: string; from: number; limit: number }>): Promise<KeyedRow[][]> => {
    if (reads.length === 1) {
      const [{ stream, from, limit }] = reads as [(typeof reads)[0]];
      const rows = await connections.watch(
        sql`SELECT ${keyedColumns} FROM ${S}.events WHERE stream_id = ${stream} AND stream_version >= ${from} AND ${visible}
            ORDER BY stream_version LIMIT ${limit}`.values(),
      );
      return [rows as unknown as KeyedRow[]];
    }
    const text = `SELECT e.*, r.ord FROM unnest($1::text[], $2::int[], $3::int[]) WITH ORDINALITY AS r(s, v, n, ord)
      CROSS JOIN LATERAL (SELECT ${keyedText} FROM ${table} WHERE stream_id = r.s AND stream_version >= r.v AND ${visibleText}
        ORDER BY stream_version LIMIT r.n) e
      ORDER BY r.ord, e.stream_version`;
    const params = [
      arrayLiteral(reads.map((r) => r.stream)),
      arrayLiteral(reads.map((r) => r.from)),
      arrayLiteral(reads.map((r) => r.limit)),
    ];
    const rows = await connections.watch(sql.unsafe(text, params, { prepare: true }).values());
    const pages = reads.map((): KeyedRow[] => []);
    // The last column is the read's place in the batch (ordinality counts from 1).
    for (const row of rows as unknown as unknown[][]) pages[Number(row.pop()) - 1]?.push(row as unknown as KeyedRow);
    return pages;
  });

  const headPosition = async (): Promise<bigint> => {
    const [row] = await connections.watch(sql<{ head: string }[]>`SELECT coalesce(max(position), 0)::text AS head FROM ${S}.events`);
    return BigInt(row?.head ?? '0');
  };

  /** For live subscribers: a dropped connection (restart, failover, terminate) is waited out, not thrown. */
  async function patiently<T>(read: () => Promise<T>, fallback: T, abort?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (closed || abort?.aborted) return fallback;
      try {
        return await read();
      } catch (error) {
        if (closed || abort?.aborted) return fallback;
        if (!isConnectionError(error)) throw error;
        await sleep(Math.min(1000, 25 * 2 ** attempt));
      }
    }
  }

  // ---- wake-ups ------------------------------------------------------------------------------

  let listening: Promise<{ unlisten(): Promise<void> } | undefined> | undefined;
  const startListening = () => {
    // onlisten also runs after postgres.js re-listens on a new connection: re-read, we may have missed a NOTIFY.
    // The payload is the head the commit left (migration 6); a store whose schema another
    // process migrated to a newer version than it knows, or an older writer, may send ''.
    listening ??= sql
      .listen(
        channelName(schema),
        (payload) => (/^\d+$/.test(payload) ? signal.notifyThrough(BigInt(payload)) : signal.notify()),
        () => signal.notify(),
      )
      .catch(() => undefined); // polling still delivers, only later
  };

  function enqueue(stream: string, expected: ExpectedVersion, events: PreparedEvent[], span: Span | undefined): Promise<AppendResult> {
    assertOpen();
    let bytes = 0;
    for (const e of events) bytes += e.dataJson.length + e.metadataJson.length + 100;
    return new Promise((resolve, reject) => {
      queue.push({ stream, expected, events, bytes, resolve, reject, span });
      flush();
    });
  }

  const store: PostgresEventStore = {
    backend: 'postgres',
    limits,
    sql,
    schema,

    watch: (query) => connections.watch(query),
    openSealed,

    async projectionBackend() {
      // Loaded on first use: a store that runs no projection never loads this code.
      const { createPostgresBackend } = await import('./projections.js');
      return createPostgresBackend(store);
    },

    addInlineHook(hook) {
      inlineHooks.add(hook);
      return () => {
        inlineHooks.delete(hook);
      };
    },

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      return traceAppend('postgresql', stream, events, (span) => {
        try {
          assertOpen();
          assertStreamId(stream);
          const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
          assertExpectedVersion(expected);
          const prepared = prepareEvents(events, limits);
          // Sealing may create a subject key first; appends stay in call order (see storePersonalData).
          const queued = personal.append(stream, prepared, () => enqueue(stream, expected, prepared, span));
          // A pure version check writes nothing the tombstone trigger sees: ask once it is answered
          // (queued at once, so call order holds; a tombstone is forever, so a later one counts too).
          if (prepared.length > 0) return queued;
          return queued.then(async (result) => {
            await retention.assertNotTombstoned(stream);
            return result;
          });
        } catch (error) {
          return Promise.reject(error);
        }
      });
    },

    async *read(stream: string, opts?: ReadOptions) {
      assertOpen();
      assertStreamId(stream);
      const { from, backward, limit } = normalizeReadOptions(opts);
      let next = Math.min(from ?? (backward ? MAX_INT : 1), MAX_INT);
      let remaining = limit;
      while (remaining > 0 && (backward ? next >= 1 : true)) {
        assertOpen();
        const pageSize = Math.min(1000, remaining);
        const rows = backward
          ? ((await connections.watch(
              sql`SELECT ${keyedColumns} FROM ${S}.events WHERE stream_id = ${stream} AND stream_version <= ${next} AND ${visible}
                ORDER BY stream_version DESC LIMIT ${pageSize}`.values(),
            )) as unknown as KeyedRow[])
          : await forwardPage({ stream, from: next, limit: pageSize });
        yield* await openSealed(rows.map(toRecorded), keysRead(rows));
        if (rows.length < pageSize) return;
        remaining -= rows.length;
        const last = (rows[rows.length - 1] as KeyedRow)[2];
        next = backward ? last - 1 : last + 1;
      }
    },

    async *readAll(opts?: ReadAllOptions) {
      assertOpen();
      yield* pagedReadAll(readPage, normalizeReadAllOptions(opts), headPosition);
    },

    async *subscribe(opts?: SubscribeOptions) {
      assertOpen();
      startListening();
      yield* liveReadAll(
        {
          readPage: (after, limit, filter) => patiently(() => readPage(after, limit, filter), [], opts?.signal),
          headPosition: () => patiently(headPosition, 0n, opts?.signal),
          signal,
          pollMs,
          isClosed: () => closed,
          backend: 'postgres',
        },
        opts,
      );
    },

    async streamVersion(stream: string) {
      assertOpen();
      assertStreamId(stream);
      const [row] = await connections.watch(sql<{ version: number }[]>`SELECT version FROM ${S}.streams WHERE stream_id = ${stream}`);
      return row?.version ?? 0;
    },

    async headPosition() {
      assertOpen();
      return headPosition();
    },

    setStreamMetadata: retention.setStreamMetadata,
    getStreamMetadata: retention.getStreamMetadata,
    deleteStream: retention.deleteStream,
    listStreamLifecycles: retention.listStreamLifecycles,
    restoreStreamStart: retention.restoreStreamStart,
    scavenge: retention.scavenge,

    async listStreams(opts: ListStreamsOptions = {}): Promise<StreamInfo[]> {
      assertOpen();
      const { prefix = '', after = '', limit = 100 } = opts;
      const rows = await connections.watch(
        sql<{ stream_id: string; version: number; last_position: string; at: string }[]>`
        SELECT stream_id, version, last_position, to_char(last_recorded_at AT TIME ZONE 'UTC', ${sql.unsafe(ISO)}) AS at
        FROM ${S}.streams
        WHERE stream_id > ${after} AND stream_id >= ${prefix} AND starts_with(stream_id, ${prefix})
        ORDER BY stream_id LIMIT ${limit}`,
      );
      return rows.map((row) => ({
        streamId: row.stream_id,
        version: row.version,
        lastPosition: BigInt(row.last_position),
        lastRecordedAt: row.at,
      }));
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      const [row] = await connections.watch(
        sql<{ events: string; streams: string; head: string }[]>`
        SELECT (SELECT count(*) FROM ${S}.events)::text AS events, (SELECT count(*) FROM ${S}.streams)::text AS streams,
               (SELECT coalesce(max(position), 0) FROM ${S}.events)::text AS head`,
      );
      return { events: Number(row?.events), streams: Number(row?.streams), headPosition: BigInt(row?.head ?? '0') };
    },

    async saveSnapshot(snapshot: Snapshot) {
      assertOpen();
      assertStreamId(snapshot.streamId);
      const { streamId, name, streamVersion, snapshotVersion, state, takenAt } = snapshot;
      await sql`
        INSERT INTO ${S}.snapshots (stream_id, name, stream_version, snapshot_version, state, taken_at)
        VALUES (${streamId}, ${name}, ${streamVersion}, ${snapshotVersion}, ${JSON.stringify(state)}::text::json, ${takenAt})
        ON CONFLICT (stream_id, name) DO UPDATE SET stream_version = excluded.stream_version,
          snapshot_version = excluded.snapshot_version, state = excluded.state, taken_at = excluded.taken_at`;
    },

    async loadSnapshot(stream: string, name: string) {
      assertOpen();
      const [row] = await connections.watch(
        sql<{ stream_version: number; snapshot_version: number; state: JsonValue; taken_at: string }[]>`
        SELECT stream_version, snapshot_version, state, taken_at FROM ${S}.snapshots WHERE stream_id = ${stream} AND name = ${name}`,
      );
      if (!row) return undefined;
      return {
        streamId: stream,
        name,
        streamVersion: row.stream_version,
        snapshotVersion: row.snapshot_version,
        state: row.state,
        takenAt: row.taken_at,
      };
    },

    ...personal.methods((event) => enqueue(SUBJECTS_STREAM, 'any', prepareEvents([event], limits), undefined)),

    async close() {
      if (closed) return;
      // Appends waiting for a subject key were accepted: they join the queue first.
      await personal.settled();
      if (closed) return;
      closed = true;
      // Appends already accepted are committed and answered before the pool ends.
      while (lanes.size) await Promise.all(lanes);
      signal.notify();
      const listener = await listening;
      await listener?.unlisten().catch(() => {});
      sqlEnded = true;
      // Our appends are done; a bounded timeout also covers postgres.js 3.4.9's end() hanging on a
      // connection killed mid-query (porsager/postgres#1097): stragglers are destroyed after 1 s.
      await Promise.all([sql.end({ timeout: 1 }), writer.end({ timeout: 1 })]);
    },
  };
  return store;
}
