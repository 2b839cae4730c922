/**
 * The SQLite store on better-sqlite3: the embedded default.
 *
 * - WAL journal, `synchronous=FULL` by default: an acknowledged append survives power loss.
 * - Appends are coalesced: every append requested while the event loop is busy joins one
 *   write transaction (each in its own savepoint, so one failing append fails alone), and all
 *   are acknowledged after the shared COMMIT. One caller alone pays one commit, as before. A
 *   transaction that ends part-way is settled by what the log holds (see settleEndedBatch).
 * - Several processes may share one file: writes take the write lock with BEGIN IMMEDIATE and
 *   wait up to `busyTimeoutMs`; live subscribers in other processes are woken by a watch on
 *   the database directory, with a slow poll as the fallback.
 */
import { type FSWatcher, mkdirSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import { DriverMissingError, LoglineError, StoreClosedError, StoreUnavailableError, WrongExpectedVersionError } from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
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
  versionMatches,
} from '../../core/validation.js';
import type { ProjectionSupport } from '../../projections/backend.js';
import { COLUMNS, type Row, toRecorded } from './rows.js';
import { CATEGORY_SQL, migrate } from './schema.js';

/** Events counted per step when stats() catches up: a few milliseconds of work between yields. */
const TALLY_SLICE = 20_000;

export type SqliteSynchronous = 'off' | 'normal' | 'full' | 'extra';

export interface SqliteStoreOptions {
  /** File path; ':memory:' for a private in-memory database. */
  path: string;
  /** SQLite's `synchronous` pragma. Default 'full' (durable across power loss in WAL mode). */
  synchronous?: SqliteSynchronous;
  /** How long a writer waits for another process's write lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** Longest a live subscriber sleeps before re-reading when no wake-up arrives. Default 250 ms. */
  pollMs?: number;
  limits?: Partial<StoreLimits>;
}

/** Runs inside the append's transaction after its events are inserted (inline projections). */
export type SqliteInlineHook = (db: Database, events: RecordedEvent[]) => void;

export interface SqliteEventStore extends EventStore, ProjectionSupport {
  readonly backend: 'sqlite';
  /** The underlying connection, for read models that must share the events' transactions. */
  readonly database: Database;
  readonly path: string;
  /** Registers a hook that runs inside every append transaction; returns an unregister function. */
  addInlineHook(hook: SqliteInlineHook): () => void;
}

interface PendingAppend {
  stream: string;
  expected: ExpectedVersion;
  events: PreparedEvent[];
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
  /** How often a failed batch made it run again (see settleEndedBatch). */
  reruns: number;
  /** The append's trace span, when tracing records: it learns the size of the commit it joined. */
  span: Span | undefined;
}

/** Most events one coalesced transaction carries; later appends wait for the next one. */
const MAX_EVENTS_PER_COMMIT = 20_000;

/** How often an append whose events are already stored is re-run after its batch failed. */
const MAX_RERUNS = 3;

async function loadDriver(): Promise<typeof BetterSqlite3> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (error) {
    throw new DriverMissingError('sqlite', 'better-sqlite3', error);
  }
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteEventStore> {
  const Driver = await loadDriver();
  const inMemory = options.path === ':memory:';
  const path = inMemory ? options.path : resolve(options.path);
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new Driver(path, { timeout: options.busyTimeoutMs ?? 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous ?? 'full'}`);
  migrate(db);
  return createSqliteStore(db, path, inMemory, options);
}

function createSqliteStore(db: Database, path: string, inMemory: boolean, options: SqliteStoreOptions): SqliteEventStore {
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const signal = new AppendSignal();
  const inlineHooks = new Set<SqliteInlineHook>();
  let closed = false;
  let queue: PendingAppend[] = [];
  let flushScheduled = false;

  const sql = {
    version: db.prepare('SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?').pluck(),
    insert: db.prepare(
      'INSERT INTO events (stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    byIds: db.prepare(`SELECT ${COLUMNS} FROM events WHERE id IN (SELECT value FROM json_each(?))`).raw(),
    readForward: db
      .prepare(`SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?`)
      .raw(),
    readBackward: db
      .prepare(`SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND stream_version <= ? ORDER BY stream_version DESC LIMIT ?`)
      .raw(),
    head: db.prepare('SELECT coalesce(max(position), 0) FROM events').pluck(),
    headRecordedAt: db.prepare('SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1').pluck(),
    // Events after a position, one slice at a time: how many, how many opened a stream, the last position.
    tallyAfter: db
      .prepare(
        `SELECT count(*), coalesce(sum(stream_version = 1), 0), max(position)
         FROM (SELECT position, stream_version FROM events WHERE position > ? ORDER BY position LIMIT ?)`,
      )
      .raw(),
    listStreams: db
      .prepare(
        `SELECT stream_id, max(stream_version), max(position), max(recorded_at) FROM events
         WHERE stream_id > ? AND stream_id >= ? AND stream_id < ? GROUP BY stream_id ORDER BY stream_id LIMIT ?`,
      )
      .raw(),
    saveSnapshot: db.prepare(
      `INSERT INTO snapshots (stream_id, name, stream_version, snapshot_version, state, taken_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (stream_id, name) DO UPDATE SET stream_version = excluded.stream_version,
         snapshot_version = excluded.snapshot_version, state = excluded.state, taken_at = excluded.taken_at`,
    ),
    loadSnapshot: db
      .prepare('SELECT stream_version, snapshot_version, state, taken_at FROM snapshots WHERE stream_id = ? AND name = ?')
      .raw(),
  };

  // One prepared statement per query shape, prepared on first use.
  const statements = new Map<string, Statement>();
  const statement = (text: string): Statement => {
    let prepared = statements.get(text);
    if (!prepared) {
      prepared = db.prepare(text).raw();
      statements.set(text, prepared);
    }
    return prepared;
  };

  const readPage = async (after: bigint, limit: number, filter: NormalizedReadAll): Promise<RecordedEvent[]> => {
    assertOpen();
    const query = pageQuery(filter);
    if (query.perType) {
      const positionsOf = statement(query.text);
      const positions = (filter.types as string[])
        .flatMap((type) => positionsOf.all(type, after, ...query.params, limit).map((row) => (row as [number])[0]))
        .sort((a, b) => a - b)
        .slice(0, limit);
      const rows = statement(`SELECT ${COLUMNS} FROM events WHERE position IN (SELECT value FROM json_each(?)) ORDER BY position`);
      return (rows.all(JSON.stringify(positions)) as Row[]).map(toRecorded);
    }
    return (statement(query.text).all(after, ...query.params, limit) as Row[]).map(toRecorded);
  };

  /**
   * stats() without a full-table count (which blocks the event loop for a second at 10M events):
   * events are never deleted and positions only grow, in commit order even across processes, so
   * the counts are kept by adding the events after the last position counted; a stream is counted
   * by its version-1 event. The first call on a large store counts in slices, yielding between them.
   */
  const tally = { position: 0, events: 0, streams: 0 };
  let tallied: Promise<void> = Promise.resolve();
  async function countNewEvents(): Promise<void> {
    for (;;) {
      assertOpen();
      const [events, streams, last] = sql.tallyAfter.get(tally.position, TALLY_SLICE) as [number, number, number | null];
      if (events === 0 || last === null) return;
      tally.position = last;
      tally.events += events;
      tally.streams += streams;
      if (events < TALLY_SLICE) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  function assertOpen(): void {
    if (closed) throw new StoreClosedError('sqlite');
  }

  /**
   * The time to record, read inside the write transaction (so after any other writer's commit)
   * and never before the head's, should the clock step back: recordedAt follows positions.
   */
  const recordedNow = (): string => {
    const now = new Date().toISOString();
    const headAt = sql.headRecordedAt.get() as string | undefined;
    return headAt !== undefined && headAt > now ? headAt : now;
  };

  /** Writes one append inside the current transaction; throws to roll back its savepoint. */
  const writeOne = (pending: PendingAppend, recordedAt: string): AppendResult => {
    const { stream, expected, events } = pending;
    const actual = sql.version.get(stream) as number;
    if (!versionMatches(expected, actual)) {
      // A retry of an append that already landed shows up here as a version mismatch.
      const stored = events.length ? (sql.byIds.all(JSON.stringify(events.map((e) => e.id))) as Row[]) : [];
      if (stored.length) return resolveRetry(stream, expected, events, stored.map(toRecorded));
      throw new WrongExpectedVersionError(stream, expected, actual);
    }
    if (events.length === 0) return { streamVersion: actual, position: BigInt(sql.head.get() as number) };
    let version = actual;
    let position = 0;
    const recorded: RecordedEvent[] | undefined = inlineHooks.size ? [] : undefined;
    let inserted = 0;
    try {
      for (const event of events) {
        version++;
        const occurredAt = event.occurredAt ?? recordedAt;
        const info = sql.insert.run(stream, version, event.id, event.type, event.dataJson, event.metadataJson, occurredAt, recordedAt);
        position = info.lastInsertRowid as number;
        inserted++;
        recorded?.push({
          id: event.id,
          type: event.type,
          data: event.data,
          metadata: event.metadata,
          occurredAt,
          streamId: stream,
          streamVersion: version,
          position: BigInt(position),
          recordedAt,
        });
      }
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && String(error).includes('events.id')) {
        // Rows this attempt inserted are visible here but roll back with the savepoint: ignore them.
        const ownIds = new Set(events.slice(0, inserted).map((e) => e.id));
        const stored = (sql.byIds.all(JSON.stringify(events.map((e) => e.id))) as Row[]).filter((row) => !ownIds.has(row[3]));
        // Roll back what this append inserted so far, then answer as a retry (or a conflict).
        throw new RetryDetected(resolveRetryOrError(stream, expected, events, stored));
      }
      throw error;
    }
    if (recorded) for (const hook of inlineHooks) hook(db, recorded);
    return { streamVersion: version, position: BigInt(position) };
  };

  const control = {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
  };
  // Called inside the batch's transaction, better-sqlite3 runs it in a savepoint.
  const writeInSavepoint = db.transaction(writeOne);

  /**
   * Writes a batch in one write transaction, each append in its own savepoint (a lone append
   * needs none: its failure rolls back the whole transaction). A transaction that ends before
   * COMMIT (an inline hook rolled it back or committed it; SQLite rolled it back by itself on a
   * full disk or an I/O error) or whose COMMIT fails is reported, not settled here.
   */
  const writeBatch = (batch: PendingAppend[]): BatchRun => {
    const outcomes: Outcome[] = [];
    let rolledBack = false;
    control.begin.run();
    const recordedAt = recordedNow();
    for (const [i, pending] of batch.entries()) {
      try {
        outcomes.push({ ok: true, result: batch.length === 1 ? writeOne(pending, recordedAt) : writeInSavepoint(pending, recordedAt) });
      } catch (error) {
        if (!db.inTransaction) return { ended: true, culprit: i, error };
        if (batch.length === 1) {
          control.rollback.run();
          rolledBack = true;
        }
        outcomes.push(error instanceof RetryDetected ? error.outcome : { ok: false, error: describeWriteFailure(error) });
      }
      // A hook may end the transaction without throwing: what follows would run outside it.
      if (!db.inTransaction && !rolledBack) {
        return { ended: true, culprit: i, error: new Error('an inline hook ended the write transaction') };
      }
    }
    if (rolledBack) return { ended: false, outcomes };
    try {
      control.commit.run();
    } catch (error) {
      if (db.inTransaction) control.rollback.run();
      return { ended: true, culprit: undefined, error };
    }
    return { ended: false, outcomes };
  };

  /**
   * Whether any event of `pending` is in the log (ids are unique: this is what really committed);
   * undefined when the database cannot tell.
   */
  const isStored = (pending: PendingAppend): boolean | undefined => {
    if (pending.events.length === 0) return false;
    try {
      return sql.byIds.all(JSON.stringify(pending.events.map((e) => e.id))).length > 0;
    } catch {
      return undefined;
    }
  };

  /**
   * A batch whose transaction ended early or failed to commit: rolled-back appends were never
   * stored, yet some may have committed (a hook's COMMIT). No caller is told "nothing stored"
   * without checking. The append whose write ended the transaction fails alone when none of its
   * events is stored; every other one runs again, in call order, before anything queued later:
   * re-running is safe because event ids are idempotency keys, so an append that did commit
   * comes back as an exact retry with its original result. After a failed COMMIT there is no
   * culprit: appends that are not stored fail (nothing stored), the others are re-run.
   */
  const settleEndedBatch = (batch: PendingAppend[], culprit: number | undefined, error: unknown): void => {
    const again: PendingAppend[] = [];
    for (const [i, pending] of batch.entries()) {
      const stored = isStored(pending);
      if (stored === false && (culprit === undefined || i === culprit)) pending.reject(describeWriteFailure(error));
      else if (stored === undefined || (stored && pending.reruns >= MAX_RERUNS)) {
        pending.reject(new StoreUnavailableError('sqlite', 'the write transaction failed and its events may be stored', error));
      } else {
        pending.reruns++;
        again.push(pending);
      }
    }
    queue = [...again, ...queue];
    if (queue.length) scheduleFlush();
  };

  const flush = (): void => {
    flushScheduled = false;
    if (queue.length === 0) return;
    let end = 0;
    let count = 0;
    while (end < queue.length && (end === 0 || count + (queue[end] as PendingAppend).events.length <= MAX_EVENTS_PER_COMMIT)) {
      count += (queue[end] as PendingAppend).events.length;
      end++;
    }
    const batch = queue.slice(0, end);
    queue = queue.slice(end);
    if (queue.length) scheduleFlush();
    for (const pending of batch) recordCommit(pending.span, batch.length, count);
    let run: BatchRun;
    try {
      run = writeBatch(batch);
    } catch (error) {
      // BEGIN failed (the write lock stayed busy): nothing of this batch is stored.
      const reason = describeWriteFailure(error);
      for (const pending of batch) pending.reject(reason);
      return;
    }
    if (run.ended) settleEndedBatch(batch, run.culprit, run.error);
    else {
      batch.forEach((pending, i) => {
        const outcome = run.outcomes[i] as Outcome;
        if (outcome.ok) pending.resolve(outcome.result);
        else pending.reject(outcome.error);
      });
    }
    signal.notify();
  };

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  // Wake live subscribers when another process commits: its writes touch the -wal file.
  let watcher: FSWatcher | undefined;
  let subscribers = 0;
  const walName = `${basename(path)}-wal`;
  // The watch fires when another process writes the WAL, which is before its commit is visible
  // (the fsync and the WAL-index update come after the last write). So a write starts a short
  // burst of `PRAGMA data_version` checks (1, 2, 4 … 64 ms apart); each change wakes subscribers.
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  let lastDataVersion = dataVersion.get();
  let burst: NodeJS.Timeout | undefined;
  const checkForCommits = (delayMs: number): void => {
    burst = undefined;
    if (closed) return;
    const version = dataVersion.get();
    if (version !== lastDataVersion) {
      lastDataVersion = version;
      signal.notify();
      delayMs = 1; // more may follow
    }
    if (delayMs <= 64) burst = setTimeout(checkForCommits, delayMs, delayMs * 2).unref();
  };
  const startWatching = () => {
    if (inMemory || watcher) return;
    try {
      watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file !== walName && file !== basename(path)) return;
        clearTimeout(burst);
        checkForCommits(1);
      });
      watcher.on('error', () => stopWatching());
    } catch {
      watcher = undefined; // polling still delivers, only later
    }
  };
  const stopWatching = () => {
    watcher?.close();
    watcher = undefined;
    clearTimeout(burst);
    burst = undefined;
  };

  const store: SqliteEventStore = {
    backend: 'sqlite',
    limits,
    database: db,
    path,

    async projectionBackend() {
      // Loaded on first use: a store that runs no projection never loads this code.
      const { createSqliteBackend } = await import('./projections.js');
      return createSqliteBackend(store);
    },

    addInlineHook(hook) {
      inlineHooks.add(hook);
      return () => inlineHooks.delete(hook);
    },

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      return traceAppend('sqlite', stream, events, (span) => {
        try {
          assertOpen();
          assertStreamId(stream);
          const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
          assertExpectedVersion(expected);
          const prepared = prepareEvents(events, limits);
          return new Promise((resolve, reject) => {
            queue.push({ stream, expected, events: prepared, resolve, reject, reruns: 0, span });
            scheduleFlush();
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
      let next = from ?? (backward ? Number.MAX_SAFE_INTEGER : 1);
      let remaining = limit;
      while (remaining > 0 && (backward ? next >= 1 : true)) {
        assertOpen();
        const pageSize = Math.min(500, remaining);
        const rows = (backward ? sql.readBackward : sql.readForward).all(stream, next, pageSize) as Row[];
        for (const row of rows) yield toRecorded(row);
        if (rows.length < pageSize) return;
        remaining -= rows.length;
        const last = (rows[rows.length - 1] as Row)[2];
        next = backward ? last - 1 : last + 1;
      }
    },

    async *readAll(opts?: ReadAllOptions) {
      assertOpen();
      yield* pagedReadAll(readPage, normalizeReadAllOptions(opts), async () => BigInt(sql.head.get() as number));
    },

    async *subscribe(opts?: SubscribeOptions) {
      assertOpen();
      if (++subscribers === 1) startWatching();
      try {
        yield* liveReadAll(
          {
            readPage,
            headPosition: async () => BigInt(sql.head.get() as number),
            signal,
            pollMs: options.pollMs ?? 250,
            isClosed: () => closed,
            backend: 'sqlite',
          },
          opts,
        );
      } finally {
        if (--subscribers === 0) stopWatching();
      }
    },

    async streamVersion(stream: string) {
      assertOpen();
      assertStreamId(stream);
      return sql.version.get(stream) as number;
    },

    async headPosition() {
      assertOpen();
      return BigInt(sql.head.get() as number);
    },

    async listStreams(opts: ListStreamsOptions = {}): Promise<StreamInfo[]> {
      assertOpen();
      const { prefix = '', after = '', limit = 100 } = opts;
      const rows = sql.listStreams.all(after, prefix, `${prefix}\uffff`, limit) as [string, number, number, string][];
      return rows.map(([streamId, version, lastPosition, lastRecordedAt]) => ({
        streamId,
        version,
        lastPosition: BigInt(lastPosition),
        lastRecordedAt,
      }));
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      // Chained, so a call never joins a count that started before its caller's last append.
      const counted = tallied.then(countNewEvents);
      tallied = counted.catch(() => {});
      await counted;
      return { events: tally.events, streams: tally.streams, headPosition: BigInt(sql.head.get() as number) };
    },

    async saveSnapshot(snapshot: Snapshot) {
      assertOpen();
      assertStreamId(snapshot.streamId);
      const { streamId, name, streamVersion, snapshotVersion, state, takenAt } = snapshot;
      sql.saveSnapshot.run(streamId, name, streamVersion, snapshotVersion, JSON.stringify(state), takenAt);
    },

    async loadSnapshot(stream: string, name: string) {
      assertOpen();
      const row = sql.loadSnapshot.get(stream, name) as [number, number, string, string] | undefined;
      if (!row) return undefined;
      const [streamVersion, snapshotVersion, state, takenAt] = row;
      return { streamId: stream, name, streamVersion, snapshotVersion, state: JSON.parse(state) as JsonValue, takenAt };
    },

    async close() {
      if (closed) return;
      // Appends already accepted are written before the connection closes.
      while (queue.length) flush();
      closed = true;
      stopWatching();
      signal.notify();
      db.close();
    },
  };
  return store;
}

type Outcome = { ok: true; result: AppendResult } | { ok: false; error: unknown };

/** How a batch's transaction went: committed (or rolled back on purpose), or ended by something else. */
type BatchRun = { ended: false; outcomes: Outcome[] } | { ended: true; culprit: number | undefined; error: unknown };

/** Lock time-outs and I/O failures become StoreUnavailableError (the append may be retried). */
function describeWriteFailure(error: unknown): unknown {
  if (error instanceof LoglineError) return error;
  const code = String((error as { code?: unknown }).code ?? '');
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreUnavailableError(
      'sqlite',
      'another process held the write lock for longer than busyTimeoutMs; nothing was stored',
      error,
    );
  }
  if (code.startsWith('SQLITE_FULL') || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY')) {
    return new StoreUnavailableError('sqlite', `the database file could not be written (${code}); nothing was stored`, error);
  }
  return error;
}

/** Carries a retry's answer out of the savepoint so the savepoint's inserts roll back. */
class RetryDetected extends Error {
  constructor(readonly outcome: Outcome) {
    super('retry detected');
  }
}

function resolveRetryOrError(stream: string, expected: ExpectedVersion, events: PreparedEvent[], stored: Row[]): Outcome {
  try {
    return { ok: true, result: resolveRetry(stream, expected, events, stored.map(toRecorded)) };
  } catch (error) {
    return { ok: false, error };
  }
}

export interface PageQuery {
  /**
   * false: `text` reads the page, parameters (after, ...params, limit). true (several types and no
   * category): `text` lists one type's first positions, parameters (type, after, ...params, limit);
   * the page is the first `limit` of all types' positions.
   */
  perType: boolean;
  text: string;
  params: unknown[];
}

/**
 * How a page of $all is read (docs/store.md, categories): a category walks its index, a type its
 * index, and so does each of several types (merging their positions, where an IN list would make
 * SQLite sort every match after `after` for each page); a stream prefix alone filters the log.
 */
export function pageQuery(filter: Pick<NormalizedReadAll, 'types' | 'streamPrefix' | 'category'>): PageQuery {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.streamPrefix) {
    where.push('stream_id >= ? AND stream_id < ?');
    params.push(filter.streamPrefix, `${filter.streamPrefix}\uffff`);
  }
  const perType = Boolean(filter.types && filter.types.length > 1 && !filter.category);
  if (filter.types && !perType) {
    where.push(filter.types.length === 1 ? 'type = ?' : 'type IN (SELECT value FROM json_each(?))');
    params.push(filter.types.length === 1 ? filter.types[0] : JSON.stringify(filter.types));
  }
  if (filter.category) {
    where.push(`${CATEGORY_SQL} = ?`);
    params.push(filter.category);
  }
  const conditions = where.map((condition) => ` AND ${condition}`).join('');
  const text = perType
    ? `SELECT position FROM events WHERE type = ? AND position > ?${conditions} ORDER BY position LIMIT ?`
    : `SELECT ${COLUMNS} FROM events WHERE position > ?${conditions} ORDER BY position LIMIT ?`;
  return { perType, text, params };
}
