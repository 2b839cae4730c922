/**
 * Durable named subscriptions: a handler called for every matching event, in position order,
 * with the checkpoint stored in the store's backend. Delivery is at-least-once: after a crash
 * the events handled since the last saved checkpoint (at most one batch) are delivered again,
 * so handlers use `event.position` (or `event.id`) to ignore repeats.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { traceHandling } from '../core/tracing.js';
import type { EventStore, RecordedEvent } from '../core/types.js';
import { EventFailure, type ParkedEvent, type ProjectionBackend } from './backend.js';
import {
  Consumer,
  type ConsumerStatus,
  type EventFilter,
  filterMatches,
  normalizeRetry,
  type OnFailure,
  type RetryPolicy,
  validateBatchSize,
  validateFilter,
} from './consumer.js';
import { assertNotRunning, backendFor, trackConsumer } from './registry.js';

export type SubscriptionHandler = (event: RecordedEvent) => void | Promise<void>;

export interface SubscriptionOptions extends EventFilter {
  /** Durable name; the checkpoint is stored under it. */
  name: string;
  handler: SubscriptionHandler;
  /** Where a subscription without a stored checkpoint starts. Default 'start'. */
  from?: 'start' | 'end' | bigint;
  /** Most events handled between two checkpoint saves (the redelivery window). Default 100. */
  batchSize?: number;
  retry?: RetryPolicy;
  /** After the last retry the event is parked; then stop (default) or skip it and go on. */
  onFailure?: OnFailure;
}

/** A running consumer as callers see it. */
export interface ConsumerHandle {
  readonly name: string;
  /** Everything at or below this position is processed. */
  readonly position: bigint;
  readonly status: ConsumerStatus;
  readonly lastError: unknown;
  /** Settles when the consumer ends: resolves after stop(), rejects with what ended it otherwise. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
  /** Resolves once `position` is processed; rejects with PositionTimeoutError after `timeout` ms (default 5000). */
  waitForPosition(position: bigint, options?: { timeout?: number }): Promise<void>;
}

const NAME_PATTERN = /^[A-Za-z0-9_.:@-]{1,200}$/;

export function assertConsumerName(name: unknown, what = 'name'): asserts name is string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(what, `got ${JSON.stringify(name)}`, '1 to 200 characters of [A-Za-z0-9_.:@-]');
  }
}

export function assertFrom(from: unknown): asserts from is 'start' | 'end' | bigint | undefined {
  if (!(from === undefined || from === 'start' || from === 'end' || (typeof from === 'bigint' && from >= 0n))) {
    throw new InvalidArgumentError('from', `got ${String(from)}`, "'start', 'end' or a position as a bigint ≥ 0n");
  }
}

export const toHandle = (consumer: Consumer): ConsumerHandle => ({
  get name() {
    return consumer.name;
  },
  get position() {
    return consumer.position;
  },
  get status() {
    return consumer.status;
  },
  get lastError() {
    return consumer.lastError;
  },
  done: consumer.done,
  stop: () => consumer.stop(),
  waitForPosition: (position, options) => waitOn(consumer, position, options?.timeout),
});

export function waitOn(consumer: Consumer, position: unknown, timeout: unknown = 5000): Promise<void> {
  if (typeof position !== 'bigint' || position < 0n) {
    return Promise.reject(new InvalidArgumentError('position', `got ${String(position)}`, 'a bigint ≥ 0n'));
  }
  if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
    return Promise.reject(new InvalidArgumentError('timeout', `got ${String(timeout)}`, 'a number of milliseconds ≥ 0'));
  }
  return consumer.waitForPosition(position, timeout);
}

export interface SubscriptionHandle extends ConsumerHandle {
  listParked(): Promise<ParkedEvent[]>;
  replayParked(ids?: number[]): Promise<ReplayResult>;
}

export async function startSubscription(store: EventStore, options: SubscriptionOptions): Promise<SubscriptionHandle> {
  assertConsumerName(options?.name);
  if (typeof options.handler !== 'function') throw new InvalidArgumentError('handler', 'it is not a function', 'a function (event) => …');
  assertFrom(options.from);
  const filter = validateFilter(options);
  const batchSize = validateBatchSize(options.batchSize, 100);
  const retry = normalizeRetry(options.retry);
  const onFailure = options.onFailure ?? 'stop';
  if (onFailure !== 'stop' && onFailure !== 'skip')
    throw new InvalidArgumentError('onFailure', `got ${String(onFailure)}`, "'stop' or 'skip'");
  const { name, handler } = options;
  assertNotRunning(store, name);
  const backend = await backendFor(store);
  const kind = 'subscription' as const;
  // Settled before this function returns: 'end' means the head when startSubscription was called.
  let startAt = await backend.readCheckpoint(name);
  if (startAt === undefined) {
    const from = options.from ?? 'start';
    startAt = from === 'start' ? 0n : from === 'end' ? await store.headPosition() : from;
    // Remember where 'end' was, so a restart continues from there rather than from a later end.
    await backend.saveCheckpoint({ name, kind, position: startAt });
  }

  const consumer = new Consumer({
    name,
    store,
    batchSize,
    retry,
    onFailure,
    start: async () => startAt,
    sink: {
      wants: filterMatches(filter),
      async apply(events, through) {
        for (let i = 0; i < events.length; i++) {
          try {
            const event = events[i] as RecordedEvent;
            await traceHandling('logline.subscription.handle', { 'logline.consumer': name }, [event], () => handler(event));
          } catch (error) {
            // Events before i were handled: their effects stay (at-least-once, not transactional).
            throw new EventFailure((events[i] as RecordedEvent).position, error, true);
          }
        }
        await backend.saveCheckpoint({ name, kind, position: through });
      },
      park: (input, advanceTo) => backend.park(input, advanceTo === undefined ? undefined : { name, kind, position: advanceTo }),
    },
  });
  trackConsumer(store, consumer);
  const handle = toHandle(consumer);
  return Object.assign(handle, {
    listParked: () => backend.listParked(name),
    /** Calls the handler again for parked events (all, or these ids); removes those that succeed. */
    replayParked: (ids?: number[]) =>
      replayParkedEvents(backend, name, ids, async (item) => {
        await handler(item.event);
        await backend.deleteParked(item.id);
      }),
  });
}

export interface ReplayResult {
  replayed: number;
  failed: Array<{ id: number; error: unknown }>;
}

/**
 * Replays a consumer's parked events (all, or these ids) one at a time through `replay`, which
 * removes each one it handles; a failure stays parked and is reported.
 */
export async function replayParkedEvents(
  backend: ProjectionBackend,
  consumer: string,
  ids: number[] | undefined,
  replay: (item: ParkedEvent) => Promise<void>,
): Promise<ReplayResult> {
  const parked = (await backend.listParked(consumer)).filter((p) => ids === undefined || ids.includes(p.id));
  const result: ReplayResult = { replayed: 0, failed: [] };
  for (const item of parked) {
    try {
      await replay(item);
      result.replayed++;
    } catch (error) {
      result.failed.push({ id: item.id, error: error instanceof EventFailure ? error.cause : error });
    }
  }
  return result;
}
