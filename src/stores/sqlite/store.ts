/**
 * The SQLite store on better-sqlite3: the embedded default.
 *
 * - WAL journal, `synchronous=FULL` by default: an acknowledged append survives power loss.
 * - Appends are coalesced: every append requested while the previous commit is under way joins
 *   the next write transaction (each in its own savepoint, so one failing append fails alone),
 *   and all are acknowledged after the shared COMMIT. One caller alone pays one commit. A
 *   transaction that ends part-way is settled by what the log holds (see settleEndedBatch).
 * - A file database writes coalesced batches in a writer thread with a connection of its own
 *   (writer-thread.ts), so the event loop keeps serving while a commit syncs; reads stay on this
 *   thread's connection. A lone append, an in-memory database, and a store with inline hooks
 *   (which run inside the append's transaction on this thread's connection) write on this thread;
 *   a lone append that finds another process holding the write lock waits for it in the thread,
 *   since SQLite's busy handler would sleep the event loop.
 * - Several processes may share one file: writes take the write lock with BEGIN IMMEDIATE and
 *   wait up to `busyTimeoutMs`; live subscribers in other processes are woken by a watch on
 *   the database directory, with a slow poll as the fallback.
 */
import { type FSWatcher, mkdirSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import {
  DriverMissingError,
  LoglineError,
  StoreClosedError,
  StoreUnavailableError,
  StreamDeletedError,
  WrongExpectedVersionError,
} from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
import { assertMasterKey, openEvents, readableKeys, SUBJECTS_STREAM, sealedSubjects, storePersonalData } from '../../core/personal-data.js';
import { AppendSignal, liveReadAll, pagedReadAll } from '../../core/reading.js';
import { firstVisibleVersion, isVisible } from '../../core/retention.js';
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
import { createSqliteRetention, VISIBLE_IN_LOG } from './retention.js';
import { COLUMNS, type Row, toRecorded } from './rows.js';
import { CATEGORY_SQL, migrate } from './schema.js';
import { createSqliteKeyTable } from './subject-keys.js';
import { type BatchRun, createWriter, type WriteEvent, type WriteOutcome, type WriteRequest } from './writer.js';
import { startWriterThread, type ThreadRun, type WriterThread } from './writer-thread.js';

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
  /**
   * Write coalesced batches of appends in a writer thread (a file database only). Default true:
   * the event loop keeps serving while a commit syncs to disk. A lone append is written on the
   * calling thread either way. false writes everything on the calling thread.
   */
  writerThread?: boolean;
  limits?: Partial<StoreLimits>;
  /** Wraps each subject key (AES-256-GCM, 32 bytes); see docs/lifecycle.md#forget-a-person. */
  masterKey?: Uint8Array;
}

/** Runs inside the append's transaction after its events are inserted (inline projections). */
export type SqliteInlineHook = (db: Database, events: RecordedEvent[]) => void;

export interface SqliteEventStore extends EventStore, ProjectionSupport {
  readonly backend: 'sqlite';
  /** The underlying connection, for read models that must share the events' transactions. */
  readonly database: Database;
  readonly path: string;
  /**
   * Registers a hook that runs inside every append transaction from the next batch on; returns an
   * unregister function. A batch already in the writer thread commits without it: see writesSettled.
   */
  addInlineHook(hook: SqliteInlineHook): () => void;
  /**
   * Resolves once the batch the writer thread is writing, if any, is committed and answered. With
   * an inline hook attached no new one starts, so after this every append runs the hook.
   */
  writesSettled(): Promise<void>;
  /**
   * Runs a PRAGMA on the connection that writes appends (the writer thread's, when there is one)
   * and returns its simple value: the settings that count for durability are that connection's.
   */
  writerPragma(pragma: string): Promise<unknown>;
  /** Opens the personal fields of events read from the table directly (inline projections do). */
  openSealed(events: RecordedEvent[]): RecordedEvent[];
}

interface PendingAppend {
  stream: string;
  expected: ExpectedVersion;
  events: PreparedEvent[];
  /** Characters of JSON its events carry: what a hand-over to the writer thread copies. */
  chars: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
  /** How often a failed batch made it run again (see settleEndedBatch). */
  reruns: number;
  /** The append's trace span, when tracing records: it learns the size of the commit it joined. */
  span: Span | undefined;
}

/** Most events one coalesced transaction carries; later appends wait for the next one. */
const MAX_EVENTS_PER_COMMIT = 20_000;

/**
 * Most JSON one batch hands to the writer thread (4 Mi characters). The thread gets a copy of its
 * batch, so this bounds the memory the hand-over adds; an append larger than this alone is
 * written on the calling thread, where nothing is copied.
 */
const MAX_THREAD_BATCH_CHARS = 4 * 1024 * 1024;

/** How often an append whose events are already stored is re-run after its batch failed. */
const MAX_RERUNS = 3;
/** How long after appends overlapped or arrived together a batch of one still goes to the writer thread. */
const SEVERAL_CALLERS_MS = 1000;

async function loadDriver(): Promise<typeof BetterSqlite3> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (error) {
    throw new DriverMissingError('sqlite', 'better-sqlite3', error);
  }
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteEventStore> {
  assertMasterKey(options.masterKey);
  const Driver = await loadDriver();
  const inMemory = options.path === ':memory:';
  const path = inMemory ? options.path : resolve(options.path);
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new Driver(path, { timeout: options.busyTimeoutMs ?? 5000 });
  // A new file lets a scavenge give freed pages back (incremental vacuum); it must be set before the first table.
  if (db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() === 0) db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous ?? 'full'}`);
  migrate(db);
  return createSqliteStore(db, path, inMemory, options);
}

/** Why a batch failed when the writer thread itself died with it (no answer from the database). */
const threadLost = (error: unknown) =>
  new StoreUnavailableError('sqlite', 'the writer thread stopped; appends now write on the main thread', error);

function createSqliteStore(db: Database, path: string, inMemory: boolean, options: SqliteStoreOptions): SqliteEventStore {
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const signal = new AppendSignal();
  const inlineHooks = new Set<SqliteInlineHook>();
  let closed = false;
  let closing: Promise<void> | undefined;
  let queue: PendingAppend[] = [];
  let flushScheduled = false;
  const { masterKey } = options;
  const keyTable = createSqliteKeyTable(db);
  const personal = storePersonalData(keyTable, masterKey, () => assertOpen());
  /** Events read from the table as a reader sees them (synchronous: the retry check runs inside a transaction). */
  const openSealed = (events: RecordedEvent[]): RecordedEvent[] => {
    const subjects = sealedSubjects(events);
    return subjects.length ? openEvents(events, readableKeys(keyTable.load(subjects), masterKey)) : events;
  };

  const retention = createSqliteRetention(db, () => assertOpen());
  const sql = {
    version: db.prepare('SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?').pluck(),
    byIds: db.prepare(`SELECT ${COLUMNS} FROM events WHERE id IN (SELECT value FROM json_each(?))`).raw(),
    readForward: db
      .prepare(`SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?`)
      .raw(),
    readBackward: db
      .prepare(`SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND stream_version <= ? ORDER BY stream_version DESC LIMIT ?`)
      .raw(),
    head: db.prepare('SELECT coalesce(max(position), 0) FROM events').pluck(),
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
    // Streams with retention settings or deletions add a visibility check, only while there are any.
    const query = pageQuery(filter, retention.anyLifecycle());
    let page: RecordedEvent[];
    if (query.perType) {
      const positionsOf = statement(query.text);
      const positions = (filter.types as string[])
        .flatMap((type) => positionsOf.all(type, after, ...query.params, limit).map((row) => (row as [number])[0]))
        .sort((a, b) => a - b)
        .slice(0, limit);
      const rows = statement(`SELECT ${COLUMNS} FROM events WHERE position IN (SELECT value FROM json_each(?)) ORDER BY position`);
      page = (rows.all(JSON.stringify(positions)) as Row[]).map(toRecorded);
    } else page = (statement(query.text).all(after, ...query.params, limit) as Row[]).map(toRecorded);
    return filter.sealed ? page : openSealed(page);
  };

  /**
   * stats() without a full-table count (which blocks the event loop for a second at 10M events):
   * positions only grow, in commit order even across processes, so the counts are kept by adding
   * the events after the last position counted; a stream is counted by its version-1 event. Only a
   * scavenge deletes events: this process's scavenges count them out (another process's are
   * counted out when this one restarts). The first call on a large store counts in slices,
   * yielding between them.
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

  /** Inline hooks see the append's events as recorded, inside its transaction. */
  const runInlineHooks = (request: WriteRequest, firstVersion: number, positions: number[], recordedAt: string): void => {
    if (inlineHooks.size === 0) return;
    const recorded = (request as PendingAppend).events.map(
      (event, i): RecordedEvent => ({
        id: event.id,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
        occurredAt: event.occurredAt ?? recordedAt,
        streamId: request.stream,
        streamVersion: firstVersion + i,
        position: BigInt(positions[i] as number),
        recordedAt,
      }),
    );
    for (const hook of inlineHooks) hook(db, recorded);
  };
  const localWriter = createWriter(db, runInlineHooks);
  let useThread = !inMemory && options.writerThread !== false;
  let thread: WriterThread | undefined;
  // Started with the first batch it gets: a store that only reads, or has a single caller, never starts one.
  const writerThread = (): WriterThread =>
    (thread ??= startWriterThread({ path, synchronous: options.synchronous ?? 'full', busyTimeoutMs: options.busyTimeoutMs ?? 5000 }));
  /** The batch the writer thread is writing (one at a time: the next one grows meanwhile). */
  let writing: Promise<void> | undefined;
  /** Appends enqueued and not answered yet. */
  let unanswered = 0;
  /** Until when a batch of one still goes to the thread: appends overlapped lately (several callers). */
  let severalCallersUntil = 0;

  /** One append's answer from its outcome in a committed batch. */
  const answer = (pending: PendingAppend, outcome: WriteOutcome): void => {
    const { stream, expected, events } = pending;
    if (outcome.kind === 'written') pending.resolve({ streamVersion: outcome.streamVersion, position: BigInt(outcome.position) });
    else if (outcome.kind === 'conflict') pending.reject(new WrongExpectedVersionError(stream, expected, outcome.actual));
    else if (outcome.kind === 'deleted') pending.reject(new StreamDeletedError(stream));
    else if (outcome.kind === 'failed') pending.reject(describeWriteFailure(outcome.error));
    else {
      try {
        pending.resolve(resolveRetry(stream, expected, events, openSealed(outcome.stored.map(toRecorded))));
      } catch (error) {
        pending.reject(error);
      }
    }
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

  /** Answers a batch from how its transaction ran (or the error that kept it from beginning). */
  const finish = (batch: PendingAppend[], outcome: ThreadRun): void => {
    if ('threw' in outcome) {
      // BEGIN failed (the write lock stayed busy): nothing of this batch is stored.
      const reason = describeWriteFailure(outcome.threw);
      for (const pending of batch) pending.reject(reason);
    } else if (outcome.run.ended) settleEndedBatch(batch, outcome.run.culprit, outcome.run.error);
    else {
      const { outcomes } = outcome.run;
      for (const [i, pending] of batch.entries()) answer(pending, outcomes[i] as WriteOutcome);
    }
    signal.notify();
  };

  const flush = (): void => {
    flushScheduled = false;
    if (queue.length === 0 || writing) return;
    // Inline hooks run inside the transaction on this thread's connection: while one is attached, write here.
    const threadable = useThread && inlineHooks.size === 0;
    let end = 0;
    let count = 0;
    let chars = 0;
    for (; end < queue.length; end++) {
      const next = queue[end] as PendingAppend;
      if (end > 0 && (count + next.events.length > MAX_EVENTS_PER_COMMIT || (threadable && chars + next.chars > MAX_THREAD_BATCH_CHARS)))
        break;
      count += next.events.length;
      chars += next.chars;
    }
    const batch = queue.slice(0, end);
    queue = queue.slice(end);
    for (const pending of batch) recordCommit(pending.span, batch.length, count);
    // A lone append of a single caller (one append at a time, each awaited) is written here: the
    // two thread hops would only add to its latency. With several callers a batch of one is only
    // the gap between arrivals, and its commit here (an fsync) would hold all of them up
    // (docs/benchmarks.md, the SQLite write path at 1M users). Several callers show as appends
    // that overlap (see enqueue) or that arrive together, a batch of several: while this thread
    // commits, nothing can overlap. If another process holds the write lock a lone append goes to
    // the thread too, to wait there.
    if (batch.length > 1) severalCallersUntil = performance.now() + SEVERAL_CALLERS_MS;
    if (threadable && (batch.length > 1 || performance.now() < severalCallersUntil)) {
      writeOnThread(batch);
      return;
    }
    if (queue.length) scheduleFlush();
    let run: BatchRun | 'busy';
    try {
      run = threadable ? localWriter.tryWriteBatch(batch) : localWriter.writeBatch(batch);
    } catch (error) {
      finish(batch, { threw: error });
      return;
    }
    if (run === 'busy') writeOnThread(batch);
    else finish(batch, { run });
  };

  const writeOnThread = (batch: PendingAppend[]): void => {
    writing = writerThread()
      .write(batch.map(({ stream, expected, events }) => ({ stream, expected, events: events.map(toWriteEvent) })))
      .then(
        (outcome) => finish(batch, outcome),
        // The thread died with the batch in it: answered by what the log holds, like a failed
        // COMMIT; later batches write on this thread.
        (error) => {
          thread = undefined;
          useThread = false;
          settleEndedBatch(batch, undefined, threadLost(error));
        },
      )
      .finally(() => {
        writing = undefined;
        if (queue.length) scheduleFlush();
      });
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

  function enqueue(stream: string, expected: ExpectedVersion, events: PreparedEvent[], span: Span | undefined): Promise<AppendResult> {
    assertOpen();
    if (unanswered > 0) severalCallersUntil = performance.now() + SEVERAL_CALLERS_MS;
    unanswered++;
    return new Promise<AppendResult>((resolve, reject) => {
      const chars = events.reduce((sum, e) => sum + e.dataJson.length + e.metadataJson.length, 0);
      queue.push({ stream, expected, events, chars, resolve, reject, reruns: 0, span });
      scheduleFlush();
    }).finally(() => {
      unanswered--;
    });
  }

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

    openSealed,

    async writesSettled() {
      await writing?.catch(() => {});
    },

    async writerPragma(pragma) {
      assertOpen();
      return useThread ? writerThread().pragma(pragma) : db.pragma(pragma, { simple: true });
    },

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      return traceAppend('sqlite', stream, events, (span) => {
        try {
          assertOpen();
          assertStreamId(stream);
          const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
          assertExpectedVersion(expected);
          const prepared = prepareEvents(events, limits);
          // Sealing may create a subject key first; appends stay in call order (see storePersonalData).
          return personal.append(stream, prepared, () => enqueue(stream, expected, prepared, span));
        } catch (error) {
          return Promise.reject(error);
        }
      });
    },

    async *read(stream: string, opts?: ReadOptions) {
      assertOpen();
      assertStreamId(stream);
      const { from, backward, limit } = normalizeReadOptions(opts);
      // Retention as it stands when the read starts: hidden events are skipped (docs/lifecycle.md).
      const record = retention.record(stream);
      const version = record ? retention.version(stream) : 0;
      const floor = firstVisibleVersion(record, version);
      const now = Date.now();
      if (floor === Number.POSITIVE_INFINITY) return;
      let next = backward ? (from ?? Number.MAX_SAFE_INTEGER) : Math.max(from ?? 1, floor);
      let remaining = limit;
      while (remaining > 0 && (backward ? next >= floor : true)) {
        assertOpen();
        const pageSize = Math.min(500, remaining);
        const rows = (backward ? sql.readBackward : sql.readForward).all(stream, next, pageSize) as Row[];
        const visible: RecordedEvent[] = [];
        let olderHidden = false;
        for (const row of rows) {
          const event = toRecorded(row);
          if (record && !isVisible(event, record, version, now)) {
            // Hidden events are a prefix of the stream: reading backwards, nothing older is visible.
            if (backward) {
              olderHidden = true;
              break;
            }
            continue;
          }
          visible.push(event);
        }
        yield* openSealed(visible);
        remaining -= visible.length;
        if (olderHidden) return;
        if (rows.length < pageSize) return;
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
      return retention.version(stream);
    },

    ...retention.methods((removed) => {
      // stats() has counted the removed events it had reached: count them out (a stream is
      // counted by its version-1 event, or else by streamsWithoutFirstEvent()).
      for (const { position, stream_version } of removed) {
        if (position > tally.position) continue;
        tally.events--;
        if (stream_version === 1) tally.streams--;
      }
    }),

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
      return {
        events: tally.events,
        streams: tally.streams + retention.streamsWithoutFirstEvent(),
        headPosition: BigInt(sql.head.get() as number),
      };
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

    ...personal.methods((event) => enqueue(SUBJECTS_STREAM, 'any', prepareEvents([event], limits), undefined)),

    close() {
      closing ??= (async () => {
        // Appends waiting for a subject key were accepted: they join the queue first.
        await personal.settled();
        // Appends already accepted are written before the connections close.
        while (queue.length || writing) {
          if (writing) await writing;
          else flush();
        }
        closed = true;
        stopWatching();
        signal.notify();
        await thread?.close();
        db.close();
      })();
      return closing;
    },
  };
  return store;
}

/** What the writer needs of an event (its JSON text), without the parsed data it was made from. */
const toWriteEvent = ({ id, type, dataJson, metadataJson, occurredAt }: PreparedEvent): WriteEvent =>
  occurredAt === undefined ? { id, type, dataJson, metadataJson } : { id, type, dataJson, metadataJson, occurredAt };

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
export function pageQuery(filter: Pick<NormalizedReadAll, 'types' | 'streamPrefix' | 'category'>, visibleOnly = false): PageQuery {
  const where: string[] = [];
  const params: unknown[] = [];
  // Retention settings and deletions hide events (retention.ts); no parameters.
  if (visibleOnly) where.push(VISIBLE_IN_LOG);
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
