/**
 * Consumer groups: N workers (processes) share one subscription. Events are split into
 * partitions by a hash of the stream id, so one stream's events stay in order on one worker.
 * Each partition has its own checkpoint and a lease with an expiry; workers heartbeat their
 * leases, take a fair share, and pick up the partitions of a worker whose leases expired.
 *
 * At-least-once: a worker that dies loses the events it handled after its last checkpoint save
 * (at most one batch); the next owner handles them again, in order, from that checkpoint.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidArgumentError } from '../core/errors.js';
import { traceHandling } from '../core/tracing.js';
import type { EventStore, RecordedEvent, SubscribeOptions } from '../core/types.js';
import { EventFailure } from './backend.js';
import {
  Consumer,
  type EventFilter,
  filterMatches,
  normalizeRetry,
  type OnFailure,
  type RetryPolicy,
  validateBatchSize,
  validateFilter,
} from './consumer.js';
import { backendFor } from './registry.js';
import { assertConsumerName, type ReplayResult, replayParkedEvents } from './subscription.js';

export interface GroupOptions extends EventFilter {
  /** The group's durable name: its partitions' checkpoints are `group#0`, `group#1`, … */
  group: string;
  handler: (event: RecordedEvent) => void | Promise<void>;
  /** This worker's id, unique in the group. Default: host-pid-random. */
  member?: string;
  /** Number of partitions; every worker of a group must use the same. Default 16. */
  partitions?: number;
  /** Where partitions without a checkpoint start (exclusive). Default 0n (the start). */
  from?: bigint;
  /** Events handled between checkpoint saves: the redelivery window after a crash. Default 100. */
  batchSize?: number;
  /** A lease lasts this long unless renewed; a dead worker's partitions move after it. Default 10 s. */
  leaseMs?: number;
  /** How often leases are renewed and rebalanced. Default leaseMs / 3. */
  heartbeatMs?: number;
  retry?: RetryPolicy;
  onFailure?: OnFailure;
  /**
   * Handles a whole batch at once (in order) instead of one `handler` call per event; a failure
   * is put on the batch's first event, so the consumer retries that one alone and isolates the
   * event at fault. `handler` still serves parked-event replays.
   */
  handleBatch?: (events: RecordedEvent[]) => Promise<void>;
  /**
   * Failures that are not the event's fault (a sink that is down): the batch is retried with
   * backoff for as long as it takes, and nothing is parked.
   */
  isTransient?: (error: unknown) => boolean;
  /**
   * Coalesces checkpoint saves (0, the default: one save per batch). A handled batch's checkpoint
   * is saved at the latest this many ms later, before a batch that would leave more than
   * `batchSize` events handled but unsaved, and on stop and rebalance: a crash still repeats at
   * most `batchSize` events, but a live worker handling one event per batch saves a few times a
   * second instead of once per event.
   */
  checkpointMs?: number;
  /** Once live, how long a batch waits for more events after its first (default 0: only what is there). */
  lingerMs?: number;
  /** The live read once caught up (default store.subscribe), e.g. the process's shared tail (shared-tail.ts). */
  subscribe?: (options: SubscribeOptions) => AsyncIterable<RecordedEvent>;
}

export interface GroupWorker {
  readonly group: string;
  readonly member: string;
  /** Partitions this worker works on now. */
  readonly partitions: readonly number[];
  readonly lastError: unknown;
  /** Settles when the worker ended (stop() or a stop on failure). */
  readonly done: Promise<void>;
  /** Finishes the batch in flight, saves checkpoints, hands its leases back. */
  stop(): Promise<void>;
  /** Calls the handler again for the group's parked events (all, or these ids); removes those that succeed. */
  replayParked(ids?: number[]): Promise<ReplayResult>;
}

/** FNV-1a (32 bit) of the stream id, modulo the partition count: stable across processes and versions. */
export function partitionOf(streamId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < streamId.length; i++) {
    hash ^= streamId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

const positiveInt = (name: string, value: unknown, fallback: number, max = 1_000_000): number => {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new InvalidArgumentError(name, `got ${JSON.stringify(value)}`, `an integer from 1 to ${max}`);
  }
  return value as number;
};

export async function joinGroup(store: EventStore, options: GroupOptions): Promise<GroupWorker> {
  assertConsumerName(options?.group, 'group');
  if (typeof options.handler !== 'function') throw new InvalidArgumentError('handler', 'it is not a function', 'a function (event) => …');
  const member = options.member ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  assertConsumerName(member, 'member');
  const filter = validateFilter(options);
  const partitions = positiveInt('partitions', options.partitions, 16, 4096);
  const batchSize = validateBatchSize(options.batchSize, 100);
  const leaseMs = positiveInt('leaseMs', options.leaseMs, 10_000, 3_600_000);
  const heartbeatMs = positiveInt('heartbeatMs', options.heartbeatMs, Math.max(1, Math.floor(leaseMs / 3)), leaseMs);
  const checkpointMs = options.checkpointMs === 0 ? 0 : positiveInt('checkpointMs', options.checkpointMs, 0, 3_600_000);
  const initial = options.from ?? 0n;
  if (typeof initial !== 'bigint' || initial < 0n) throw new InvalidArgumentError('from', `got ${String(initial)}`, 'a bigint ≥ 0n');
  const retry = normalizeRetry(options.retry);
  const onFailure = options.onFailure ?? 'stop';
  const { group, handler } = options;
  const backend = await backendFor(store);

  let owned: number[] = [];
  let ownedSet = new Set<number>();
  const checkpoints = new Map<number, bigint>();
  let consumer: Consumer | undefined;
  let leaseValidUntil = 0;
  let stopped = false;
  let lastError: unknown;
  let beating: Promise<void> = Promise.resolve();
  let resolveDone!: () => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {});

  const checkpointName = (partition: number) => `${group}#${partition}`;
  const matches = filterMatches(filter);

  /**
   * The newest position a save could not store for some partition because its lease had lapsed
   * (a heartbeat late on a busy machine). Stored by the next heartbeat for the partitions it still
   * holds: otherwise a consumer restarted by a rebalance would read the older checkpoint and handle
   * those events again.
   */
  let lapsed: bigint | undefined;
  /** Saves `position` for the partitions of `parts` whose lease this member holds; returns those. */
  const storeCheckpoints = async (parts: number[], position: bigint): Promise<number[]> => {
    const held = await backend.saveGroupCheckpoints(group, member, parts, position, Date.now());
    for (const partition of held) if ((checkpoints.get(partition) ?? -1n) < position) checkpoints.set(partition, position);
    return held;
  };
  const saveNow = async (position: bigint) => {
    const held = await storeCheckpoints(owned, position);
    if (held.length < owned.length) {
      if (lapsed === undefined || lapsed < position) lapsed = position;
      schedule(0); // a lease was lost: rebalance now
    }
  };

  // With checkpointMs: handled but not yet saved (through where, how many events), and the saves
  // in order, so a late timer never saves an older position over a newer one.
  let unsaved: { through: bigint; events: number } | undefined;
  let unsavedTimer: NodeJS.Timeout | undefined;
  let saving: Promise<void> = Promise.resolve();
  const saveCheckpoints = (position: bigint): Promise<void> => {
    clearTimeout(unsavedTimer);
    unsavedTimer = undefined;
    const pending = unsaved;
    unsaved = undefined;
    saving = saving
      .catch(() => {})
      .then(() => saveNow(position))
      .catch((error) => {
        // Not saved: keep it for the next save (or the timer), unless a newer one is pending.
        if (pending && !unsaved) noteHandled(pending.through, pending.events);
        throw error;
      });
    return saving;
  };
  const flushCheckpoints = (): Promise<void> => (unsaved ? saveCheckpoints(unsaved.through) : saving.catch(() => {}));
  function noteHandled(through: bigint, events: number) {
    unsaved = { through, events: (unsaved?.events ?? 0) + events };
    unsavedTimer ??= setTimeout(() => {
      unsavedTimer = undefined;
      flushCheckpoints().catch((error) => {
        lastError = error; // kept as unsaved: the next batch or timer saves it
      });
    }, checkpointMs);
  }

  const startConsumer = async () => {
    for (const partition of owned) checkpoints.set(partition, (await backend.readCheckpoint(checkpointName(partition))) ?? initial);
    if (owned.length === 0 || stopped) return;
    const from = owned.reduce((min, p) => ((checkpoints.get(p) as bigint) < min ? (checkpoints.get(p) as bigint) : min), 2n ** 63n);
    const started = new Consumer({
      name: group,
      store,
      batchSize,
      retry,
      onFailure,
      start: async () => from,
      ...(options.subscribe ? { subscribe: options.subscribe } : {}),
      ...(options.lingerMs ? { lingerMs: options.lingerMs } : {}),
      sink: {
        wants(event) {
          if (!matches(event)) return false;
          const partition = partitionOf(event.streamId, partitions);
          return ownedSet.has(partition) && event.position > (checkpoints.get(partition) as bigint);
        },
        async apply(events, through) {
          // Never work on a lease that may have expired: another worker may own it by now.
          if (Date.now() > leaseValidUntil - heartbeatMs) throw new Error(`group ${group}: leases of ${member} are about to expire`);
          // Never more than batchSize events handled but unsaved: the redelivery window after a crash.
          if (unsaved && unsaved.events + events.length > batchSize) await flushCheckpoints();
          if (options.handleBatch && events.length > 0) {
            try {
              await options.handleBatch(events);
            } catch (error) {
              throw options.isTransient?.(error) ? error : new EventFailure((events[0] as RecordedEvent).position, error);
            }
          }
          for (let i = 0; !options.handleBatch && i < events.length; i++) {
            try {
              const event = events[i] as RecordedEvent;
              await traceHandling(
                'logline.group.handle',
                { 'logline.consumer': `${group}#${partitionOf(event.streamId, partitions)}` },
                [event],
                () => handler(event),
              );
            } catch (error) {
              throw options.isTransient?.(error) ? error : new EventFailure((events[i] as RecordedEvent).position, error, true);
            }
          }
          if (checkpointMs === 0) return saveCheckpoints(through);
          noteHandled(through, events.length);
          if ((unsaved?.events ?? 0) >= batchSize) await flushCheckpoints();
        },
        async park(input, advanceTo) {
          await backend.park(input);
          if (advanceTo !== undefined) await saveCheckpoints(advanceTo);
        },
      },
      onEnd(error) {
        // A rebalance stops the consumer to move partitions; a retry it cut short is no failure:
        // the event stays behind its partition's checkpoint and whoever owns it next retries it.
        if (error === undefined || stopped || started.interrupted) return;
        lastError = error;
        void stop(error);
      },
    });
    consumer = started;
  };

  const heartbeat = async () => {
    if (stopped) return;
    const now = Date.now();
    const plan = await backend.balanceLeases(group, member, partitions, leaseMs, now);
    leaseValidUntil = now + leaseMs;
    if (lapsed !== undefined) {
      // Only partitions held again: one taken by another member is its owner's to checkpoint.
      const position = lapsed;
      lapsed = undefined;
      const kept = owned.filter((partition) => plan.owned.includes(partition));
      if (kept.length) await storeCheckpoints(kept, position);
    }
    const changed = plan.surplus.length > 0 || plan.owned.length !== owned.length || plan.owned.some((p) => !ownedSet.has(p));
    if (!changed || stopped) return;
    // Finish the batch in flight (its checkpoint is saved), then hand back what is not ours.
    await consumer?.stop();
    consumer = undefined;
    // A save that fails here only widens the next owner's redelivery (at least once either way).
    await flushCheckpoints().catch(() => {});
    if (plan.surplus.length) await backend.releaseLeases(group, member, plan.surplus);
    owned = plan.owned;
    ownedSet = new Set(owned);
    await startConsumer();
  };

  let timer: NodeJS.Timeout | undefined;
  function schedule(delay: number) {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      beating = beating
        .then(heartbeat)
        .catch((error) => {
          lastError = error; // the backend was busy or away: try again at the next beat
        })
        .finally(() => schedule(heartbeatMs));
    }, delay);
  }

  async function stop(error?: unknown) {
    if (stopped) return done;
    stopped = true;
    clearTimeout(timer);
    await beating.catch(() => {});
    await consumer?.stop();
    await flushCheckpoints().catch(() => {});
    await backend.leaveGroup(group, member).catch(() => {});
    owned = [];
    if (error === undefined) resolveDone();
    else rejectDone(error);
    return done.catch(() => {});
  }

  await heartbeat();
  schedule(heartbeatMs);

  return {
    group,
    member,
    get partitions() {
      return owned;
    },
    get lastError() {
      return lastError;
    },
    done,
    stop: () => stop(),
    replayParked: (ids) =>
      replayParkedEvents(backend, group, ids, async (item) => {
        await handler(item.event);
        await backend.deleteParked(item.id);
      }),
  };
}
