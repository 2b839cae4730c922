/**
 * Projections into SQL read models that live in the same database as the events. A batch of
 * handler writes and the checkpoint commit in one transaction, so each event takes effect
 * exactly once across crashes (memory: at-least-once, it has no transactions).
 *
 * Versions: every logical table `t` of version n is the physical table `t_vn`, and a view `t`
 * points at the active version. Bumping `version` builds `t_v(n+1)` beside the live one from
 * the start of the log; once it has caught up, one transaction moves the view and the pointer
 * row, and the old tables are dropped. Queries that read the view never see a half-built model.
 */
import type { Database } from 'better-sqlite3';
import { InvalidArgumentError, LoglineError } from '../core/errors.js';
import { SUBJECTS_STREAM } from '../core/personal-data.js';
import type { EventStore, RecordedEvent } from '../core/types.js';
import { assertCategory, matchesFilter } from '../core/validation.js';
import {
  applyInOrder,
  EventFailure,
  errorMessage,
  type InlineProjection,
  isThenable,
  type ParkedEvent,
  type ProjectionBackend,
  SupersededError,
  type TransactOptions,
  versionedTable,
} from './backend.js';
import { Consumer, normalizeRetry, type OnFailure, type RetryPolicy, validateBatchSize } from './consumer.js';
import { ProjectionStoppedError } from './errors.js';
import { assertNotRunning, backendFor, trackConsumer } from './registry.js';
import { type ConsumerHandle, type ReplayResult, replayParkedEvents, toHandle } from './subscription.js';

export interface ProjectionContext<Tx = unknown> {
  /** The open transaction: the better-sqlite3 Database on SQLite, the postgres.js transaction on PostgreSQL, undefined in memory. */
  tx: Tx;
  /** The physical table of a logical table for the version being built: table('balances') → 'balances_v2'. */
  table(name: string): string;
  projection: string;
  version: number;
}

export type ProjectionHandler<Tx = unknown> = (event: RecordedEvent, ctx: ProjectionContext<Tx>) => unknown;

export interface ProjectionDefinition<Tx = unknown> {
  name: string;
  version: number;
  /** Logical tables; each gets a physical table per version and a view of its own name. */
  tables: string[];
  /** Creates this version's tables (use ctx.table(...)); runs once per version, in a transaction. */
  setup?: (ctx: ProjectionContext<Tx>) => unknown;
  /**
   * Creates what only queries need (`CREATE INDEX IF NOT EXISTS …`; the handlers must not rely on
   * it), in a transaction. A version that starts more than max(batchSize, switchLag) positions
   * behind the head (a first build over a long log, a rebuild) runs it once it is that close,
   * before it switches over: one sort per index instead of an index update per row. Otherwise at
   * once. It runs at every start, so it must be idempotent.
   */
  indexes?: (ctx: ProjectionContext<Tx>) => unknown;
  /** Handlers by event type; other types only move the checkpoint. */
  handlers: Record<string, ProjectionHandler<Tx>>;
  /**
   * Instead of (or besides) per-event handlers: one call per batch of wanted events, for
   * set-based SQL (one statement for many events). A failing batch is re-run event by event to
   * find the event at fault, which is then retried and parked like any other.
   */
  handleBatch?: (events: RecordedEvent[], ctx: ProjectionContext<Tx>) => unknown;
  /** With handleBatch: only these event types (default: all). */
  types?: string[];
  /** Only events of streams starting with this prefix. */
  streamPrefix?: string;
  /** Only events of streams in this category (the stream id's part before its first '-'). */
  category?: string;
}

export type SqliteProjection = ProjectionDefinition<Database>;

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
/** PostgreSQL's identifier limit (NAMEDATALEN − 1); names are ASCII, so bytes are characters. */
const MAX_IDENTIFIER_BYTES = 63;
/** The stores' own tables: a read-model view of the same name would collide with them. */
const RESERVED_TABLES = ['events', 'streams', 'snapshots', 'migrations'];

/** Checks a projection definition; bad input throws InvalidArgumentError. */
export function defineProjection<Tx = unknown>(
  definition: Omit<ProjectionDefinition<Tx>, 'version' | 'tables' | 'handlers'> & {
    version?: number;
    tables?: string[];
    handlers?: Record<string, ProjectionHandler<Tx>>;
  },
): ProjectionDefinition<Tx> {
  const {
    name,
    version = 1,
    tables = [],
    handlers = {},
    handleBatch,
    types,
    setup,
    indexes,
    streamPrefix,
    category,
  } = definition ?? ({} as never);
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidArgumentError('projection name', `got ${JSON.stringify(name)}`, 'a letter, then up to 62 letters, digits or _');
  }
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new InvalidArgumentError('projection version', `got ${JSON.stringify(version)}`, 'an integer ≥ 1');
  }
  if (!Array.isArray(tables) || !tables.every((t) => typeof t === 'string' && NAME.test(t)) || new Set(tables).size !== tables.length) {
    throw new InvalidArgumentError(
      'projection tables',
      `got ${JSON.stringify(tables)}`,
      'distinct table names: a letter, then letters, digits or _',
    );
  }
  // PostgreSQL cuts identifiers longer than 63 bytes without a word: `<table>_v1` and `<table>_v2`
  // would become one table, and dropping the old version would drop the live one.
  const tooLong = tables.find((t) => versionedTable(t, version).length > MAX_IDENTIFIER_BYTES);
  if (tooLong !== undefined) {
    throw new InvalidArgumentError(
      'projection tables',
      `'${tooLong}' is too long for version ${version}: '${versionedTable(tooLong, version)}' exceeds ${MAX_IDENTIFIER_BYTES} bytes`,
      `a table name of at most ${MAX_IDENTIFIER_BYTES - versionedTable('', version).length} characters (with its _v${version} suffix, ${MAX_IDENTIFIER_BYTES} bytes)`,
    );
  }
  const reserved = tables.find((t) => RESERVED_TABLES.includes(t.toLowerCase()) || t.toLowerCase().startsWith('logline_'));
  if (reserved !== undefined) {
    throw new InvalidArgumentError(
      'projection tables',
      `'${reserved}' is a name the store uses`,
      `a name other than ${RESERVED_TABLES.join(', ')} or logline_*`,
    );
  }
  if (typeof handlers !== 'object' || handlers === null || (Object.keys(handlers).length === 0 && handleBatch === undefined)) {
    throw new InvalidArgumentError('projection handlers', 'none given', 'an object of event type → handler function, or handleBatch');
  }
  if (handleBatch !== undefined && typeof handleBatch !== 'function') {
    throw new InvalidArgumentError('handleBatch', 'it is not a function', 'a function (events, ctx) => …');
  }
  if (handleBatch !== undefined && Object.keys(handlers).length > 0) {
    throw new InvalidArgumentError('projection handlers', 'both handlers and handleBatch given', 'one of them');
  }
  if (types !== undefined && !(Array.isArray(types) && types.every((t) => typeof t === 'string'))) {
    throw new InvalidArgumentError('types', `got ${JSON.stringify(types)}`, 'an array of event type names');
  }
  for (const [type, handler] of Object.entries(handlers)) {
    if (typeof handler !== 'function') throw new InvalidArgumentError(`handler for '${type}'`, 'it is not a function', 'a function');
  }
  if (setup !== undefined && typeof setup !== 'function') throw new InvalidArgumentError('setup', 'it is not a function', 'a function');
  if (indexes !== undefined && typeof indexes !== 'function')
    throw new InvalidArgumentError('indexes', 'it is not a function', 'a function');
  if (streamPrefix !== undefined && typeof streamPrefix !== 'string') {
    throw new InvalidArgumentError('streamPrefix', `got ${typeof streamPrefix}`, 'a string');
  }
  assertCategory(category);
  return { name, version, tables: [...tables], handlers: { ...handlers }, handleBatch, types, setup, indexes, streamPrefix, category };
}

export interface ProjectionOptions {
  /** 'async' (default): a background consumer. 'inline': inside every append's transaction (SQLite, PostgreSQL). */
  mode?: 'async' | 'inline';
  /** Events per transaction while catching up. Default 500. */
  batchSize?: number;
  retry?: RetryPolicy;
  /** After the last retry the event is parked; then stop (default) or skip it. */
  onFailure?: OnFailure;
  /** A rebuild switches over once it is within this many positions of the head. Default 0. */
  switchLag?: number;
  /** Drop the previous version's tables after a switch. Default true. */
  dropOld?: boolean;
  /**
   * The SQLite or PostgreSQL store whose database holds this projection's tables and checkpoint,
   * when the events come from a store without SQL (NATS): handler writes and checkpoint still
   * commit in one transaction there, so each event takes effect once. Default: the event store.
   * Read its checkpoint (getLag, listConsumers) through this store. Async mode only.
   */
  readModel?: EventStore;
}

export interface ProjectionHandle extends ConsumerHandle {
  readonly version: number;
  /** Resolves when this version is the one queries see (at once unless rebuilding; inline: before startProjection resolves). */
  readonly active: Promise<void>;
  listParked(): Promise<ParkedEvent[]>;
  /** Re-applies parked events (all, or these ids) with their effects and removes them; returns what still failed. */
  replayParked(ids?: number[]): Promise<ReplayResult>;
}

export const checkpointName = (projection: string, version: number): string => `${projection}@v${version}`;

export function contextFor<Tx>(
  definition: ProjectionDefinition<Tx>,
  tx: Tx,
  qualify: (table: string) => string = (table) => table,
): ProjectionContext<Tx> {
  const { name, version, tables } = definition;
  return {
    tx,
    projection: name,
    version,
    table(table: string) {
      if (!tables.includes(table)) {
        throw new InvalidArgumentError('table', `'${table}' is not declared by projection '${name}'`, `one of ${JSON.stringify(tables)}`);
      }
      return qualify(versionedTable(table, version));
    },
  };
}

/** A projection limited to a stream prefix still hears that a subject was forgotten (docs/lifecycle.md#forget-a-person). */
const wantsFor = (definition: ProjectionDefinition<never>) => (event: RecordedEvent) =>
  (definition.handleBatch ? !definition.types || definition.types.includes(event.type) : Object.hasOwn(definition.handlers, event.type)) &&
  (matchesFilter(event, { streamPrefix: definition.streamPrefix, category: definition.category }) || event.streamId === SUBJECTS_STREAM);

/** Runs the definition's handlers over events (in order); failures come out as EventFailure. */
export function runHandlers<Tx>(
  definition: ProjectionDefinition<Tx>,
  events: RecordedEvent[],
  ctx: ProjectionContext<Tx>,
  syncOnly: boolean,
): void | Promise<void> {
  const { handleBatch } = definition;
  if (!handleBatch) {
    return applyInOrder(events, (event) => (definition.handlers[event.type] as ProjectionHandler<Tx>)(event, ctx), syncOnly);
  }
  if (events.length === 0) return;
  const first = (events[0] as RecordedEvent).position;
  const asFailure = (error: unknown) => new EventFailure(first, error, false, events.length > 1);
  let result: unknown;
  try {
    result = handleBatch(events, ctx);
  } catch (error) {
    throw asFailure(error);
  }
  if (!isThenable(result)) return;
  if (syncOnly) {
    Promise.resolve(result).catch(() => {});
    throw asFailure(
      new InvalidArgumentError('handleBatch', 'it returned a promise inside a SQLite transaction', 'a synchronous function on SQLite'),
    );
  }
  return Promise.resolve(result).then(
    () => {},
    (error) => {
      throw asFailure(error);
    },
  );
}

/** Applies events with the projection's handlers inside one backend transaction. */
export function applyProjection<Tx>(
  backend: ProjectionBackend,
  definition: ProjectionDefinition<Tx>,
  events: RecordedEvent[],
  options: TransactOptions,
): Promise<void> {
  const work = (tx: unknown, stored: bigint | undefined) => {
    const ctx = contextFor(definition, tx as Tx, backend.qualify);
    // Another runner of the same version may have got there first: apply only what is new.
    const todo = stored === undefined ? events : events.filter((event) => event.position > stored);
    return runHandlers(definition, todo, ctx, backend.kind === 'sqlite');
  };
  const first = events[0]?.position;
  const withFrom = first === undefined ? options : { ...options, from: first };
  const attempt = backend.transactional
    ? backend.transact(work, withFrom)
    : // Without rollback, what ran before a failure stays applied.
      backend.transact(work, withFrom).catch((error) => {
        throw error instanceof EventFailure ? new EventFailure(error.position, error.cause, true, error.wholeBatch) : error;
      });
  return attempt.catch((error) => {
    if (!(error instanceof EventFailure && error.wholeBatch)) throw error;
    return findFailingEvent(backend, definition, events, options);
  });
}

/** A batch handler failed: apply the batch one event per transaction to find the one at fault. */
async function findFailingEvent<Tx>(
  backend: ProjectionBackend,
  definition: ProjectionDefinition<Tx>,
  events: RecordedEvent[],
  options: TransactOptions,
): Promise<void> {
  for (const event of events) {
    const checkpoint = options.checkpoint && { ...options.checkpoint, position: event.position };
    try {
      await applyProjection(backend, definition, [event], { ...options, checkpoint, deleteParked: undefined });
    } catch (error) {
      // The events before it are committed, each with its checkpoint.
      throw error instanceof EventFailure ? new EventFailure(error.position, error.cause, true) : error;
    }
  }
  await backend.transact(() => {}, options);
}

export async function startProjection<Tx>(
  store: EventStore,
  definition: ProjectionDefinition<Tx>,
  options: ProjectionOptions = {},
): Promise<ProjectionHandle> {
  const { name, version, tables } = definition;
  const mode = options.mode ?? 'async';
  if (mode !== 'async' && mode !== 'inline') throw new InvalidArgumentError('mode', `got ${String(mode)}`, "'async' or 'inline'");
  const batchSize = validateBatchSize(options.batchSize, 500);
  const retry = normalizeRetry(options.retry);
  const onFailure = options.onFailure ?? 'stop';
  if (onFailure !== 'stop' && onFailure !== 'skip')
    throw new InvalidArgumentError('onFailure', `got ${String(onFailure)}`, "'stop' or 'skip'");
  const switchLag = options.switchLag ?? 0;
  if (!Number.isSafeInteger(switchLag) || switchLag < 0) {
    throw new InvalidArgumentError('switchLag', `got ${String(switchLag)}`, 'an integer ≥ 0');
  }
  const dropOld = options.dropOld ?? true;
  const key = checkpointName(name, version);
  assertNotRunning(store, key);
  if (options.readModel !== undefined && mode === 'inline') {
    throw new InvalidArgumentError('mode', "'inline' runs inside the event store's appends", "mode: 'async' with a readModel");
  }
  const backend = await backendFor(options.readModel ?? store);
  if (mode === 'inline' && !backend.attachInline) {
    throw new InvalidArgumentError('mode', "'inline' needs a store with transactions", 'a SQLite or PostgreSQL store, or mode: async');
  }

  const current = await backend.activeVersion(name);
  if (current !== undefined && current > version) {
    throw new ProjectionStoppedError(key, `version ${current} is already active; this process runs version ${version}`);
  }
  await backend.prepareVersion(name, version, tables, (tx) => definition.setup?.(contextFor(definition, tx as Tx, backend.qualify)));
  if (current === undefined) {
    await backend.activate(name, version, tables).catch((error) => {
      // A newer version went live since `current` was read.
      if (error instanceof SupersededError) {
        throw new ProjectionStoppedError(key, `version ${error.active} is already active; this process runs version ${version}`);
      }
      throw error;
    });
  }

  let resolveActive!: () => void;
  const active = new Promise<void>((resolve) => (resolveActive = resolve));
  let isActive = current === undefined || current === version;
  // Async: active once queries see this version. Inline: also once appends run it.
  if (isActive && mode === 'async') resolveActive();

  // Retried as a whole after a store error (the consumer's afterBatch): each step is done once.
  let dropPending: number | undefined;
  const switchOver = async () => {
    if (!isActive) {
      const previous = await backend.activate(name, version, tables);
      isActive = true;
      if (dropOld && previous !== undefined && previous !== version) dropPending = previous;
    }
    if (dropPending !== undefined) {
      await backend.dropVersion(name, dropPending);
      dropPending = undefined;
    }
  };
  const guard = { projection: name, version };
  const checkpoint = (position: bigint) => ({ name: key, kind: 'projection' as const, position });

  // Query-only indexes: at once when there is little to catch up, else after the catch-up (see indexes).
  const { indexes } = definition;
  const createIndexes = async () => {
    await backend.transact((tx) => indexes?.(contextFor(definition, tx as Tx, backend.qualify)), {});
    indexesPending = false;
  };
  const indexWindow = BigInt(Math.max(batchSize, switchLag));
  let indexesPending = indexes !== undefined;
  if (indexesPending && (await store.headPosition()) - ((await backend.readCheckpoint(key)) ?? 0n) <= indexWindow) await createIndexes();

  let inline: { detach(): void } | undefined;
  let consumer!: Consumer;
  const afterCaughtUp = async (position: bigint) => {
    if (indexesPending) {
      if ((await store.headPosition()) - position > indexWindow) return;
      await createIndexes();
    }
    if (isActive && mode === 'async' && dropPending === undefined) return;
    if ((await store.headPosition()) - position > BigInt(switchLag)) return;
    if (mode === 'inline' && !inline) {
      // Close the last gap and hand over to the append transactions.
      inline = await attachInline(backend, definition, key, {
        advance: (position) => consumer.advance(position),
        // A newer version went live: leave the appends alone and stop.
        superseded: () => {
          inline?.detach();
          inline = undefined;
          void consumer.stop();
        },
        // An event written elsewhere fails: the consumer applies the retry/park policy to it.
        fellBehind: () => {
          inline?.detach();
          inline = undefined;
          consumer.takeBack();
        },
      });
      // Not attached: an event since the catch-up fails; the consumer reaches it next.
      if (!inline) return;
      consumer.handOver();
    }
    await switchOver();
    resolveActive();
  };

  const skipped = skippedCheckpoint((through) => applyProjection(backend, definition, [], { checkpoint: checkpoint(through), guard }));
  consumer = new Consumer({
    name: key,
    store,
    batchSize,
    retry,
    onFailure,
    async start() {
      // The checkpoint row must exist before the first batch: that row is what concurrent
      // runners lock (PostgreSQL: FOR UPDATE locks nothing when there is no row yet).
      await backend.saveCheckpoint(checkpoint(0n));
      return (await backend.readCheckpoint(key)) ?? 0n;
    },
    afterBatch: afterCaughtUp,
    sink: {
      wants: wantsFor(definition as ProjectionDefinition<never>),
      apply: async (events, through) => {
        if (events.length === 0) return skipped.note(through);
        skipped.covered();
        await applyProjection(backend, definition, events, { checkpoint: checkpoint(through), guard });
      },
      park: (input, advanceTo) => backend.park(input, advanceTo === undefined ? undefined : checkpoint(advanceTo)),
    },
    onEnd(error) {
      if (error !== undefined) inline?.detach();
    },
  });
  trackConsumer(store, consumer);
  const handle = toHandle(consumer);
  if (mode === 'inline') await inlineInstalled(key, consumer, active, () => inline !== undefined);

  return {
    ...handle,
    get name() {
      return handle.name;
    },
    get position() {
      return handle.position;
    },
    get status() {
      return inline && consumer.status === 'stopped' ? 'live' : handle.status;
    },
    get lastError() {
      return handle.lastError;
    },
    version,
    active,
    async stop() {
      inline?.detach();
      inline = undefined;
      await consumer.stop();
      await skipped.flush().catch(() => {});
    },
    listParked: () => backend.listParked(key),
    replayParked: (ids) =>
      replayParkedEvents(backend, key, ids, async (item) => {
        await applyProjection(backend, definition, [item.event], { deleteParked: item.id, guard });
      }),
  };
}

/** How long a checkpoint that only skipped events (of types the projection does not handle) may stay unsaved. */
const SKIPPED_CHECKPOINT_MS = 1000;

/**
 * A batch with nothing for the projection only moves its checkpoint. Saving that is a write
 * transaction of its own per batch (on SQLite it waits for the writer's batch in flight and takes
 * the write lock from the appends): a view of groups paid one for every batch of name changes.
 * So such a checkpoint is saved at most SKIPPED_CHECKPOINT_MS later, or not at all when the next
 * batch with work (whose checkpoint is later) comes first. Losing it in a crash costs a re-read
 * of events the projection ignores. The position queries wait on (waitForPosition) moves at once:
 * the read model is as current as it was.
 */
function skippedCheckpoint(save: (through: bigint) => Promise<void>) {
  let through: bigint | undefined;
  let timer: NodeJS.Timeout | undefined;
  // A failed timed save (a newer version went live, the store closed) ends the consumer at its next batch.
  let failure: { error: unknown } | undefined;
  const flush = async () => {
    clearTimeout(timer);
    timer = undefined;
    const pending = through;
    through = undefined;
    if (pending !== undefined) await save(pending);
  };
  const rethrow = () => {
    if (!failure) return;
    const { error } = failure;
    failure = undefined;
    throw error;
  };
  return {
    flush,
    note(position: bigint) {
      rethrow();
      through = position;
      timer ??= setTimeout(() => {
        flush().catch((error) => (failure = { error }));
      }, SKIPPED_CHECKPOINT_MS);
      timer.unref();
    },
    /** A batch with work saves a later checkpoint: nothing of the skipped one is left to save. */
    covered() {
      rethrow();
      clearTimeout(timer);
      timer = undefined;
      through = undefined;
    },
  };
}

/**
 * Inline mode promises read-your-writes from the moment startProjection resolves: wait until the
 * catch-up handed over to the append hook (and a rebuild switched over). A consumer that ends
 * before that (a parked event with onFailure 'stop', a newer version, a closed store) rejects
 * with what ended it; its hook, if any, is already detached.
 */
async function inlineInstalled(key: string, consumer: Consumer, active: Promise<void>, installed: () => boolean): Promise<void> {
  const ended = consumer.done.then(
    () => {
      if (!installed()) throw new ProjectionStoppedError(key, 'it ended before its inline hook was installed');
    },
    (error) => {
      // Typed errors (a parked event's ProjectionStopped, StoreClosed) as they are; internal ones (Superseded) wrapped.
      throw error instanceof LoglineError ? error : new ProjectionStoppedError(key, errorMessage(error), error);
    },
  );
  ended.catch(() => {});
  await Promise.race([active, ended]);
}

/** What an inline hook reports back to its projection. */
export type InlineEvents = Pick<InlineProjection, 'advance' | 'superseded' | 'fellBehind'>;

/** Hands an inline projection to its store's backend, which runs it inside every append's transaction. */
function attachInline<Tx>(
  backend: ProjectionBackend,
  definition: ProjectionDefinition<Tx>,
  key: string,
  events: InlineEvents,
): Promise<{ detach(): void } | undefined> {
  if (!backend.attachInline)
    throw new InvalidArgumentError('mode', "'inline' needs a store with transactions", 'a SQLite or PostgreSQL store, or mode: async');
  const guard = { projection: definition.name, version: definition.version };
  return backend.attachInline({
    ...events,
    key,
    guard,
    wants: wantsFor(definition as ProjectionDefinition<never>),
    // SQLite transactions must stay synchronous, as in applyProjection.
    apply: (tx, todo) => runHandlers(definition, todo, contextFor(definition, tx as Tx, backend.qualify), backend.kind === 'sqlite'),
    applyAndCheckpoint: (todo, checkpoint) => applyProjection(backend, definition, todo, { checkpoint, guard }),
  });
}
