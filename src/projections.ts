/**
 * logline/projections: durable subscriptions, consumer groups, projections into SQL read
 * models (async and inline), rebuilds without downtime, parked events, read-your-writes, lag.
 */

import { InvalidArgumentError } from './core/errors.js';
import type { EventStore } from './core/types.js';
import type { ParkedEvent } from './projections/backend.js';
import { backendFor } from './projections/registry.js';
import type { ConsumerHandle } from './projections/subscription.js';

export type { ConsumerKind, ParkedEvent, StoredCheckpoint } from './projections/backend.js';
export { backoffDelay, type ConsumerStatus, type EventFilter, type OnFailure, type RetryPolicy } from './projections/consumer.js';
export { PositionTimeoutError, ProjectionStoppedError } from './projections/errors.js';
export { type GroupOptions, type GroupWorker, joinGroup, partitionOf } from './projections/group.js';
export { type ConsumerInfo, type GroupInfo, getLag, listConsumers, summarizeGroups } from './projections/observability.js';
export {
  defineProjection,
  type ProjectionContext,
  type ProjectionDefinition,
  type ProjectionHandle,
  type ProjectionHandler,
  type ProjectionOptions,
  type SqliteProjection,
  startProjection,
} from './projections/projection.js';
export {
  type ConsumerHandle,
  type ReplayResult,
  type SubscriptionHandle,
  type SubscriptionHandler,
  type SubscriptionOptions,
  startSubscription,
} from './projections/subscription.js';

/**
 * Resolves once `projection` (or subscription) has processed `position`; rejects with
 * PositionTimeoutError after `timeout` ms (default 5000). The basis of `Logline-Min-Position`.
 */
export function waitForPosition(projection: ConsumerHandle, position: bigint, options: { timeout?: number } = {}): Promise<void> {
  return projection.waitForPosition(position, options);
}

/** Parked events of a store: all, or one consumer's (a subscription name, `projection@vN`, a group). */
export async function listParked(store: EventStore, options: { consumer?: string } = {}): Promise<ParkedEvent[]> {
  return (await backendFor(store)).listParked(options.consumer);
}

/** Replays a consumer's parked events (all, or these ids) through its handlers; removes those that now succeed. */
export function replayParked(
  consumer: {
    replayParked?: (ids?: number[]) => Promise<{ replayed: number; failed: Array<{ id: number; error: unknown }> }>;
  },
  ids?: number[],
): Promise<{ replayed: number; failed: Array<{ id: number; error: unknown }> }> {
  if (typeof consumer?.replayParked !== 'function') {
    return Promise.reject(
      new InvalidArgumentError(
        'consumer',
        'it has no parked-event replay',
        'a handle from startProjection, startSubscription or joinGroup',
      ),
    );
  }
  return consumer.replayParked(ids);
}
