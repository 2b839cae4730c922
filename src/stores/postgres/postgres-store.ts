/**
 * The PostgreSQL store on postgres.js (an optional peer dependency, imported on first open).
 *
 * - One schema per store (per tenant), migrated on open (see schema.ts).
 * - Appends are coalesced: while one commit is in flight, new appends queue; the next commit
 *   carries all of them in ONE statement (`append_batch`, one JSON parameter): each append's
 *   expected version is checked on its own, all rows go in with one multi-row INSERT, and each
 *   caller is answered after the shared commit. A lone caller pays one round trip.
 * - Global order without skips (design §5): `append_batch` holds a per-schema advisory lock from
 *   position assignment to commit, so positions become visible in order; readers need no filter.
 * - Live subscribers are woken by LISTEN/NOTIFY (one listener connection per store) and by local
 *   commits; a slow poll is the fallback. Reads retry across dropped connections.
 */
import type Postgres from 'postgres';
import type { Sql, TransactionSql } from 'postgres';
import { DriverMissingError, InvalidStoreUrlError, StoreClosedError, WrongExpectedVersionError } from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
import { AppendSignal, liveReadAll, pagedReadAll } from '../../core/reading.js';
import {
  type AppendOptions,
  type AppendResult,
  DEFAULT_LIMITS,
  type EventStore,
  type ExpectedVersion,
  type JsonObject,
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
import { assertSchemaName, channelName, migrate } from './schema.js';
import { incrementalStats } from './stats.js';

export interface PostgresStoreOptions {
  /** postgres://user:pass@host:5432/db; the query parameters `schema`, `poolSize` and `pollMs` are read and removed. */
  url: string;
  /** The schema holding this store's tables (one per tenant). Default: the URL's `schema`, else 'logline'. */
  schema?: string;
  /** Connections in the pool (the LISTEN connection comes on top). Default: the URL's `poolSize`, else 10. */
  poolSize?: number;
  /** Longest a live subscriber sleeps without a wake-up before reading again. Default 1000 ms. */
  pollMs?: number;
  limits?: Partial<StoreLimits>;
  /**
   * Coalesced batches in flight at once (default 2). With 2, the next batch's statement travels and
   * waits on the ordering lock while the previous one commits, overlapping round trip and flush.
   */
  commitsInFlight?: number;
  /** For tests only: runs inside every append transaction, just before COMMIT (e.g. `pg_sleep`). */
  testHooks?: { beforeCommit?: (tx: TransactionSql) => Promise<void> };
}

/** Runs inside the append's transaction, after its events are inserted (same-transaction read models). */
export type PostgresInlineHook = (tx: TransactionSql, events: RecordedEvent[]) => Promise<void>;

export interface PostgresEventStore extends EventStore {
  readonly backend: 'postgres';
  /** The postgres.js instance (pool) the store uses; share it for read models and checkpoints. */
  readonly sql: Sql;
  /** The schema holding `events`, `streams`, `snapshots` and `migrations`. */
  readonly schema: string;
  /**
   * Registers a hook that runs inside every append transaction after the insert, each append in
   * its own savepoint: a hook that throws fails only its append (nothing of it is stored).
   * Returns an unregister function.
   */
  addInlineHook(hook: PostgresInlineHook): () => void;
  /**
   * Settles `query` with a CONNECTION_CLOSED error if postgres.js loses it with a killed
   * connection (see ConnectionWatch). For code that shares the pool: read models, checkpoints.
   */
  watch<T>(query: Promise<T>): Promise<T>;
}

/** One row of the events table as read with `.values()` and COLUMNS (read models reuse both). */
export type Row = [string, string, number, string, string, JsonValue, JsonObject, string, string];

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
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

interface PendingAppend {
  stream: string;
  expected: ExpectedVersion;
  events: PreparedEvent[];
  bytes: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

interface BatchRow {
  ord: number;
  status: 'ok' | 'version' | 'stored';
  actual: number;
  version: number;
  last_position: string;
  recorded_at: string;
}

type Outcome = { ok: true; result: AppendResult } | { ok: false; error: unknown } | { ok: 'stored' };

/** Most events / JSON bytes one coalesced commit carries; later appends wait for the next one. */
const MAX_EVENTS_PER_COMMIT = 20_000;

const MAX_BYTES_PER_COMMIT = 32 * 1024 * 1024;
const MAX_INT = 2_147_483_647;

const encodeExpected = (expected: ExpectedVersion): number =>
  expected === 'any' ? -1 : expected === 'no_stream' ? -2 : expected === 'exists' ? -3 : Math.min(expected, MAX_INT);

/** A PostgreSQL array literal; every element quoted (so 'NULL' stays a string), undefined is NULL. */
function arrayLiteral(values: Array<string | number | undefined>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i) out += ',';
    if (value === undefined) out += 'NULL';
    else if (typeof value === 'number') out += value;
    else out += `"${/["\\]/.test(value) ? value.replace(/["\\]/g, '\\$&') : value}"`;
  }
  return `${out}}`;
}

/**
 * The parameters of `append_batch`: per-append and per-event arrays as text, data and metadata as
 * JSON arrays spliced from the already-serialised JSON (no second stringify, one parse each).
 */
function batchParams(batch: PendingAppend[]): [string, string, string, string, string, string, string, string] {
  const ids: string[] = [];
  const types: string[] = [];
  const at: Array<string | undefined> = [];
  const data: string[] = [];
  const metadata: string[] = [];
  for (const pending of batch) {
    for (const e of pending.events) {
      ids.push(e.id);
      types.push(e.type);
      at.push(e.occurredAt);
      data.push(e.dataJson);
      metadata.push(e.metadataJson);
    }
  }
  return [
    arrayLiteral(batch.map((p) => p.stream)),
    arrayLiteral(batch.map((p) => encodeExpected(p.expected))),
    arrayLiteral(batch.map((p) => p.events.length)),
    arrayLiteral(ids),
    arrayLiteral(types),
    arrayLiteral(at),
    `[${data.join(',')}]`,
    `[${metadata.join(',')}]`,
  ];
}

/** Errors after which the connection is gone but the server may be fine: worth retrying. */
export function isConnectionError(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '');
  return (
    [
      'CONNECTION_CLOSED',
      'CONNECT_TIMEOUT',
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'ETIMEDOUT',
      '57P01',
      '57P02',
      '57P03',
      '53300',
    ].includes(code) || code.startsWith('08')
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a query may stay unsettled after a connection of the pool closed before we call it lost. */
const LOST_QUERY_GRACE_MS = 1500;
const RECENT_CLOSE_MS = 3000;

/**
 * postgres.js 3.4.9 sometimes never settles a query whose connection was killed mid-flight
 * (seen with pg_terminate_backend; see porsager/postgres#1097 and #1142). `watch` settles such a
 * query with a CONNECTION_CLOSED error once any connection of the pool closed while it was in
 * flight and it did not settle within a grace period. Callers only retry operations that are safe
 * to repeat: reads, and appends (a re-sent append resolves as an idempotent retry).
 */
class ConnectionWatch {
  private readonly waiters = new Set<() => void>();
  private lastCloseAt = Number.NEGATIVE_INFINITY;

  /** postgres.js `onclose`: a connection of the pool closed. */
  readonly closed = (): void => {
    this.lastCloseAt = performance.now();
    for (const wake of this.waiters) wake();
  };

  watch<T>(query: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onClose = () => {
        timer ??= setTimeout(() => {
          done();
          reject(Object.assign(new Error('the connection closed and the query never settled'), { code: 'CONNECTION_CLOSED' }));
        }, LOST_QUERY_GRACE_MS);
      };
      const done = () => {
        this.waiters.delete(onClose);
        clearTimeout(timer);
      };
      this.waiters.add(onClose);
      // A query sent right after a close may land on a connection that is still reconnecting
      // (where the lost promises come from), so it is watched from the start.
      if (performance.now() - this.lastCloseAt < RECENT_CLOSE_MS) onClose();
      query.then(
        (value) => {
          done();
          resolve(value);
        },
        (error) => {
          done();
          reject(error);
        },
      );
    });
  }
}

async function loadDriver(): Promise<typeof Postgres> {
  try {
    return (await import('postgres')).default;
  } catch (error) {
    throw new DriverMissingError('postgres', 'postgres', error);
  }
}

function parseUrl(options: PostgresStoreOptions): { url: string; schema: string; poolSize: number; pollMs: number } {
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch (error) {
    throw new InvalidStoreUrlError(String(options.url), `it is not a URL (${(error as Error).message})`);
  }
  const take = (name: string): string | null => {
    const value = parsed.searchParams.get(name);
    parsed.searchParams.delete(name);
    return value;
  };
  const positiveInt = (name: string, raw: string | null): number | undefined => {
    if (raw === null) return undefined;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new InvalidStoreUrlError(options.url, `${name} must be a positive integer, got '${raw}'`);
    return value;
  };
  const urlSchema = take('schema');
  const urlPool = positiveInt('poolSize', take('poolSize'));
  const urlPoll = positiveInt('pollMs', take('pollMs'));
  const schema = options.schema ?? urlSchema ?? 'logline';
  try {
    assertSchemaName(schema);
  } catch {
    throw new InvalidStoreUrlError(options.url, `schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]{0,62}), got '${schema}'`);
  }
  return { url: parsed.toString(), schema, poolSize: options.poolSize ?? urlPool ?? 10, pollMs: options.pollMs ?? urlPoll ?? 1000 };
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresEventStore> {
  const { url, schema, poolSize, pollMs } = parseUrl(options);
  const postgres = await loadDriver();
  const connections = new ConnectionWatch();
  const sql = postgres(url, {
    onclose: connections.closed,
    max: poolSize,
    onnotice: () => {},
    // No type-fetching query on each (re)connect: fewer states for a connection killed mid-startup.
    // Arrays are passed as JSON text instead.
    fetch_types: false,
    // Lets operators (and tests) find this store's sessions in pg_stat_activity.
    connection: { application_name: `logline:${schema}` },
  });
  try {
    await migrate(sql, schema);
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    if (isConnectionError(error)) throw new StoreUnavailable(error);
    throw error;
  }
  return createPostgresStore(sql, schema, pollMs, options, connections);
}

class StoreUnavailable extends Error {
  constructor(cause: unknown) {
    super(`PostgreSQL is unreachable: ${String((cause as Error)?.message ?? cause)}`, { cause });
  }
}

function createPostgresStore(
  sql: Sql,
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
  const countedStats = incrementalStats(sql, schema);
  const columns = sql.unsafe(COLUMNS);
  let closed = false;
  /** Set once the pool is ending: connection errors are final from then on. */
  let sqlEnded = false;
  let queue: PendingAppend[] = [];
  /** Commit lanes at work; each takes the next batch from the queue when its last one is answered. */
  const lanes = new Set<Promise<void>>();

  function assertOpen(): void {
    if (closed) throw new StoreClosedError('postgres');
  }

  // ---- appends -------------------------------------------------------------------------------

  /** The next batch: queue order, each stream and each event id at most once, bounded in size. */
  const takeBatch = (): PendingAppend[] => {
    const batch: PendingAppend[] = [];
    const rest: PendingAppend[] = [];
    const streams = new Set<string>();
    const ids = new Set<string>();
    let events = 0;
    let bytes = 0;
    for (const pending of queue) {
      const fits =
        batch.length === 0 ||
        (events + pending.events.length <= MAX_EVENTS_PER_COMMIT &&
          bytes + pending.bytes <= MAX_BYTES_PER_COMMIT &&
          !streams.has(pending.stream) &&
          !pending.events.some((e) => ids.has(e.id)));
      if (!fits) {
        rest.push(pending);
        continue;
      }
      batch.push(pending);
      streams.add(pending.stream);
      for (const e of pending.events) ids.add(e.id);
      events += pending.events.length;
      bytes += pending.bytes;
    }
    queue = rest;
    return batch;
  };

  const callBatch = (q: Sql | TransactionSql, batch: PendingAppend[]) => {
    const [streams, expected, counts, ids, types, at, data, metadata] = batchParams(batch);
    return q<
      BatchRow[]
    >`SELECT * FROM ${S}.append_batch(${streams}, ${expected}, ${counts}, ${ids}, ${types}, ${at}, ${data}, ${metadata})`;
  };

  const outcomeOf = (pending: PendingAppend, row: BatchRow | undefined): Outcome => {
    if (!row) return { ok: false, error: new Error('append_batch returned no row for an append') };
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

  /** One transaction for the whole batch. Throws only when the transaction as a whole failed. */
  const commitBatch = async (batch: PendingAppend[]): Promise<Outcome[]> => {
    if (inlineHooks.size === 0 && !beforeCommit) {
      // The common case: one statement, one round trip, its own implicit transaction.
      const rows = await callBatch(sql, batch);
      return batch.map((pending, i) => outcomeOf(pending, rows[i]));
    }
    return (await sql.begin(async (tx) => {
      let outcomes: Outcome[];
      if (inlineHooks.size === 0) {
        const rows = await callBatch(tx, batch);
        outcomes = batch.map((pending, i) => outcomeOf(pending, rows[i]));
      } else {
        outcomes = [];
        const hooks = [...inlineHooks];
        for (const pending of batch) {
          try {
            outcomes.push(
              await tx.savepoint(async (sp) => {
                const [row] = await callBatch(sp, [pending]);
                const outcome = outcomeOf(pending, row);
                if (outcome.ok === true && pending.events.length > 0) {
                  const recorded = recordedOf(pending, row as BatchRow);
                  for (const hook of hooks) await hook(sp, recorded);
                }
                return outcome;
              }),
            );
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      }
      if (beforeCommit) await beforeCommit(tx);
      return outcomes;
    })) as Outcome[];
  };

  /** Answers an append whose ids are already stored: an exact retry gets the original result. */
  const resolveStored = async (pending: PendingAppend, attempt = 1): Promise<Outcome> => {
    try {
      const ids = JSON.stringify(pending.events.map((e) => e.id));
      const rows = (await connections.watch(
        sql`SELECT ${columns} FROM ${S}.events WHERE id IN (SELECT json_array_elements_text(${ids}::text::json)::uuid)`.values(),
      )) as unknown as Row[];
      return { ok: true, result: resolveRetry(pending.stream, pending.expected, pending.events, rows.map(toRecorded)) };
    } catch (error) {
      if (isConnectionError(error) && attempt < 4 && !sqlEnded) {
        await sleep(50 * attempt);
        return resolveStored(pending, attempt + 1);
      }
      return { ok: false, error };
    }
  };

  const runBatch = async (batch: PendingAppend[]): Promise<Outcome[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await connections.watch(commitBatch(batch));
      } catch (error) {
        // The connection died mid-commit, so the batch may or may not have landed. Re-sending is
        // safe: appends that did land come back as 'stored' and resolve as idempotent retries.
        if (isConnectionError(error) && attempt < 4 && !sqlEnded) {
          await sleep(50 * attempt);
          continue;
        }
        if (batch.length > 1 && !isConnectionError(error)) {
          // Something in one append broke the shared statement: run them alone so it fails alone.
          const outcomes: Outcome[] = [];
          for (const pending of batch) outcomes.push(...(await runBatch([pending])));
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
      const outcomes = await runBatch(batch);
      let wrote = false;
      for (const [i, pending] of batch.entries()) {
        let outcome = outcomes[i] as Outcome;
        if (outcome.ok === 'stored') outcome = await resolveStored(pending);
        if (outcome.ok === true) {
          wrote ||= pending.events.length > 0;
          pending.resolve(outcome.result);
        } else if (outcome.ok === false) pending.reject(outcome.error);
      }
      if (wrote) signal.notify();
    }
  };

  // ---- reads ---------------------------------------------------------------------------------

  const readPage = async (after: bigint, limit: number, filter: NormalizedReadAll): Promise<RecordedEvent[]> => {
    assertOpen();
    const rows = (await connections.watch(
      sql`SELECT ${columns} FROM ${S}.events WHERE position > ${after.toString()}
      ${filter.types ? sql`AND type IN (SELECT json_array_elements_text(${JSON.stringify(filter.types)}::text::json))` : sql``}
      ${filter.streamPrefix ? sql`AND starts_with(stream_id, ${filter.streamPrefix})` : sql``}
      ORDER BY position LIMIT ${limit}`.values(),
    )) as unknown as Row[];
    return rows.map(toRecorded);
  };

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
    listening ??= sql
      .listen(
        channelName(schema),
        () => signal.notify(),
        () => signal.notify(),
      )
      .catch(() => undefined); // polling still delivers, only later
  };

  const store: PostgresEventStore = {
    backend: 'postgres',
    limits,
    sql,
    schema,

    watch: (query) => connections.watch(query),

    addInlineHook(hook) {
      inlineHooks.add(hook);
      return () => {
        inlineHooks.delete(hook);
      };
    },

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      try {
        assertOpen();
        assertStreamId(stream);
        const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
        assertExpectedVersion(expected);
        const prepared = prepareEvents(events, limits);
        let bytes = 0;
        for (const e of prepared) bytes += e.dataJson.length + e.metadataJson.length + 100;
        return new Promise((resolve, reject) => {
          queue.push({ stream, expected, events: prepared, bytes, resolve, reject });
          flush();
        });
      } catch (error) {
        return Promise.reject(error);
      }
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
        const rows = (await connections.watch(
          (backward
            ? sql`SELECT ${columns} FROM ${S}.events WHERE stream_id = ${stream} AND stream_version <= ${next}
                ORDER BY stream_version DESC LIMIT ${pageSize}`
            : sql`SELECT ${columns} FROM ${S}.events WHERE stream_id = ${stream} AND stream_version >= ${next}
                ORDER BY stream_version LIMIT ${pageSize}`
          ).values(),
        )) as unknown as Row[];
        for (const row of rows) yield toRecorded(row);
        if (rows.length < pageSize) return;
        remaining -= rows.length;
        const last = (rows[rows.length - 1] as Row)[2];
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
      const [row] = await sql<{ version: number }[]>`SELECT version FROM ${S}.streams WHERE stream_id = ${stream}`;
      return row?.version ?? 0;
    },

    async headPosition() {
      assertOpen();
      return headPosition();
    },

    async listStreams(opts: ListStreamsOptions = {}): Promise<StreamInfo[]> {
      assertOpen();
      const { prefix = '', after = '', limit = 100 } = opts;
      const rows = await sql<{ stream_id: string; version: number; last_position: string; at: string }[]>`
        SELECT stream_id, version, last_position, to_char(last_recorded_at AT TIME ZONE 'UTC', ${sql.unsafe(ISO)}) AS at
        FROM ${S}.streams
        WHERE stream_id > ${after} AND stream_id >= ${prefix} AND starts_with(stream_id, ${prefix})
        ORDER BY stream_id LIMIT ${limit}`;
      return rows.map((row) => ({
        streamId: row.stream_id,
        version: row.version,
        lastPosition: BigInt(row.last_position),
        lastRecordedAt: row.at,
      }));
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      return countedStats();
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
      const [row] = await sql<{ stream_version: number; snapshot_version: number; state: JsonValue; taken_at: string }[]>`
        SELECT stream_version, snapshot_version, state, taken_at FROM ${S}.snapshots WHERE stream_id = ${stream} AND name = ${name}`;
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

    async close() {
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
      await sql.end({ timeout: 1 });
    },
  };
  return store;
}
