/**
 * A connector: events of the log that match a source filter, mapped to messages, delivered to
 * a sink, at least once and in order per stream. It runs as a consumer group
 * (src/projections/group.ts), so its checkpoints are durable in the store, several processes
 * share its work, and events that keep failing are parked like a projection's.
 *
 * Around every delivery, from the outside in (cockatiel policies):
 *   bulkhead  this connector's own concurrency and a bounded queue: a slow sink ties up only it;
 *   retry     a few quick retries with exponential backoff and jitter;
 *   breaker   per sink: opens after consecutive failures, then fails fast; half-opens after a
 *             cool-down and lets one probe through, which closes it again on success;
 *   timeout   a delivery that hangs is cut off (and counts as a failure).
 * A sink that stays down makes the batch wait (retried with backoff, never parked, never lost);
 * a message the receiver refuses (PoisonMessageError) is retried alone and then parked.
 */
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore, JsonValue, RecordedEvent } from '../core/types.js';
import { categoryOf } from '../core/validation.js';
import type { ParkedEvent } from '../projections/backend.js';
import { normalizeRetry, type RetryPolicy, validateFilter } from '../projections/consumer.js';
import { type GroupWorker, joinGroup, partitionOf } from '../projections/group.js';
import { backendFor } from '../projections/registry.js';
import { sharedTail } from '../projections/shared-tail.js';
import { assertConsumerName, type ReplayResult } from '../projections/subscription.js';
import { toWire } from '../server/json.js';
import { type OutboundMessage, PoisonMessageError, type Sink } from './sink.js';

/** The whole event (event-carried state transfer), a thin notification, or your own function. */
export type Mapping = 'event' | 'notification' | ((event: RecordedEvent) => JsonValue);

export interface ConnectorSource {
  /** Streams `<category>-…`. */
  category?: string;
  streamPrefix?: string;
  types?: string[];
  /** Where a new connector starts: 'start' (default), 'end' (only new events) or after a position. */
  from?: 'start' | 'end' | bigint;
}

export interface DeliveryOptions {
  /** Most events per delivery, and most events delivered but not yet checkpointed (the redelivery window after a crash). Default 100. */
  batchSize?: number;
  /**
   * Checkpoint saves are coalesced: a delivered batch's checkpoint is saved at the latest this many
   * ms later, and before the next batch would leave more than `batchSize` events unsaved; 0 saves
   * after every batch. Default 1000.
   */
  checkpointMs?: number;
  /**
   * Once live, how long a delivery waits for more events after its first: fewer, larger live
   * batches (a POST per 20 ms rather than per append), at the price of that much delay. Default 20 ms.
   */
  lingerMs?: number;
  /** Deliveries in flight at once; a batch is split into this many lanes by stream. Default 1. */
  concurrency?: number;
  /** Deliveries that may wait for a free slot (parked-event replays, lanes); more are rejected and retried. Default 16. */
  queue?: number;
  /** A delivery that takes longer fails (and counts against the breaker). Default 5000 ms. */
  timeoutMs?: number;
  /** Quick retries of a failed delivery before the batch backs off. Default 2. */
  quickRetries?: number;
  /** Backoff of the batch while the sink is down, and attempts before a refused message is parked. Default 3 attempts, 200 ms … 10 s. */
  retry?: RetryPolicy;
  breaker?: {
    /** Consecutive failed deliveries that open the breaker. Default 5. */
    failures?: number;
    /** How long it stays open before a probe is let through. Default 5000 ms. */
    halfOpenAfterMs?: number;
  };
  /** Consumer-group partitions (by stream); all processes running the connector use the same. Default 16. */
  partitions?: number;
  /** Lease of a process on its partitions; a dead process's partitions move after this. Default 10 000 ms. */
  leaseMs?: number;
}

export interface ConnectorOptions {
  /** Durable name: checkpoints are kept under `connector:<name>#<partition>`. */
  name: string;
  source?: ConnectorSource;
  sink: Sink;
  mapping?: Mapping;
  delivery?: DeliveryOptions;
  /** This process's id in the connector's consumer group (default host-pid-random). */
  member?: string;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'paused';

export interface ConnectorStats {
  name: string;
  sink: { type: string; target: string };
  breaker: BreakerState;
  /** Times the breaker opened since start. */
  breakerOpened: number;
  /** 'running', 'paused' (by pause()), 'stopped', or 'failed' (see lastError). */
  status: 'running' | 'paused' | 'stopped' | 'failed';
  delivered: number;
  failedDeliveries: number;
  lastError?: string;
  lastDeliveredAt?: string;
}

export interface ConnectorHandle {
  readonly name: string;
  /** The consumer group's name, under which checkpoints and parked events are stored. */
  readonly group: string;
  readonly breaker: BreakerState;
  stats(): ConnectorStats;
  /** Lowest checkpoint over the connector's partitions, the head, and the parked count. */
  progress(): Promise<{ checkpoint: bigint; head: bigint; lag: number; parked: number }>;
  listParked(): Promise<ParkedEvent[]>;
  /** Delivers parked events again (all, or these ids); those delivered leave the parked list. */
  replayParked(ids?: number[]): Promise<ReplayResult>;
  /** Drops parked events (all, or these ids) without delivering them; returns how many. */
  skipParked(ids?: number[]): Promise<number>;
  /** Holds deliveries (the breaker is isolated: every delivery fails fast and waits); appends go on. */
  pause(): void;
  resume(): void;
  /** Finishes the delivery in flight, saves checkpoints, leaves the group, closes the sink. */
  stop(): Promise<void>;
}

const BREAKER_STATE: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'paused',
};

const DEFAULT_CONNECTOR_RETRY: Required<RetryPolicy> = { maxAttempts: 3, initialDelayMs: 200, maxDelayMs: 10_000 };

/** Failures that are not the message's fault: the batch waits and is retried; nothing is parked. */
export const isTransient = (error: unknown): boolean => !(error instanceof PoisonMessageError);

const intOption = (field: string, value: unknown, fallback: number, min: number, max: number): number => {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw new InvalidArgumentError(field, `got ${JSON.stringify(value)}`, `an integer from ${min} to ${max}`);
  }
  return value as number;
};

export function toMessage(event: RecordedEvent, mapping: Mapping): OutboundMessage {
  let payload: JsonValue;
  if (mapping === 'event') payload = toWire(event) as JsonValue;
  else if (mapping === 'notification') {
    payload = {
      id: event.id,
      type: event.type,
      streamId: event.streamId,
      streamVersion: event.streamVersion,
      position: String(event.position),
      recordedAt: event.recordedAt,
    };
  } else {
    try {
      payload = mapping(event);
    } catch (error) {
      throw new PoisonMessageError(`the mapping failed on event ${event.id}: ${(error as Error)?.message ?? error}`, { cause: error });
    }
  }
  return {
    id: event.id,
    position: String(event.position),
    streamId: event.streamId,
    streamVersion: event.streamVersion,
    type: event.type,
    // A stream id without '-' is in no category (docs/store.md); its messages go out under the id itself.
    category: categoryOf(event.streamId) ?? event.streamId,
    payload,
  };
}

function sourceFilter(source: ConnectorSource = {}): { types?: string[]; streamPrefix?: string } {
  if (source.category !== undefined && (typeof source.category !== 'string' || !/^[^-\s]+$/.test(source.category))) {
    throw new InvalidArgumentError('source.category', `got ${JSON.stringify(source.category)}`, "a stream category (no '-' or spaces)");
  }
  if (source.category !== undefined && source.streamPrefix !== undefined) {
    throw new InvalidArgumentError('source', 'both category and streamPrefix were given', 'one of them');
  }
  const streamPrefix = source.category !== undefined ? `${source.category}-` : source.streamPrefix;
  return validateFilter({ types: source.types, streamPrefix });
}

export async function startConnector(store: EventStore, options: ConnectorOptions): Promise<ConnectorHandle> {
  assertConsumerName(options?.name, 'name');
  const { name, sink } = options;
  if (typeof sink?.deliver !== 'function')
    throw new InvalidArgumentError('sink', 'it has no deliver()', 'a sink (httpSink, rabbitMqSink, …)');
  const mapping = options.mapping ?? 'event';
  if (mapping !== 'event' && mapping !== 'notification' && typeof mapping !== 'function') {
    throw new InvalidArgumentError('mapping', `got ${JSON.stringify(mapping)}`, "'event', 'notification' or a function");
  }
  const filter = sourceFilter(options.source);
  const from = options.source?.from ?? 'start';
  if (!(from === 'start' || from === 'end' || (typeof from === 'bigint' && from >= 0n))) {
    throw new InvalidArgumentError('source.from', `got ${String(from)}`, "'start', 'end' or a position ≥ 0");
  }
  const delivery = options.delivery ?? {};
  const batchSize = intOption('delivery.batchSize', delivery.batchSize, 100, 1, 10_000);
  const concurrency = intOption('delivery.concurrency', delivery.concurrency, 1, 1, 64);
  const queue = intOption('delivery.queue', delivery.queue, 16, 0, 10_000);
  const timeoutMs = intOption('delivery.timeoutMs', delivery.timeoutMs, 5000, 1, 600_000);
  const quickRetries = intOption('delivery.quickRetries', delivery.quickRetries, 2, 0, 20);
  const failures = intOption('delivery.breaker.failures', delivery.breaker?.failures, 5, 1, 1000);
  const halfOpenAfter = intOption('delivery.breaker.halfOpenAfterMs', delivery.breaker?.halfOpenAfterMs, 5000, 1, 3_600_000);
  const partitions = intOption('delivery.partitions', delivery.partitions, 16, 1, 4096);
  const leaseMs = intOption('delivery.leaseMs', delivery.leaseMs, 10_000, 100, 3_600_000);
  const checkpointMs = intOption('delivery.checkpointMs', delivery.checkpointMs, 1000, 0, 60_000);
  const lingerMs = intOption('delivery.lingerMs', delivery.lingerMs, 20, 0, 10_000);
  const retryPolicy = normalizeRetry({ ...DEFAULT_CONNECTOR_RETRY, ...delivery.retry });
  const group = `connector:${name}`;

  // Counts and state for stats(); the breaker's own events keep them current.
  let delivered = 0;
  let failedDeliveries = 0;
  let breakerOpened = 0;
  let lastError: unknown;
  let lastDeliveredAt: string | undefined;
  let stopped = false;
  let pausedBy: { dispose(): void } | undefined;

  const breaker = circuitBreaker(
    handleWhen((error) => isTransient(error)),
    { halfOpenAfter, breaker: new ConsecutiveBreaker(failures) },
  );
  breaker.onBreak(() => breakerOpened++);
  const policy = wrap(
    bulkhead(concurrency, queue),
    retry(
      // Not when the breaker is open: fail fast, the batch backs off in the consumer.
      handleWhen((error) => isTransient(error) && !(error instanceof BrokenCircuitError) && !(error instanceof BulkheadRejectedError)),
      { maxAttempts: quickRetries, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) },
    ),
    breaker,
    timeout(timeoutMs, TimeoutStrategy.Aggressive),
  );

  const deliverOnce = async (messages: OutboundMessage[]) => {
    try {
      await policy.execute(({ signal }) => sink.deliver(messages, signal));
      delivered += messages.length;
      lastDeliveredAt = new Date().toISOString();
    } catch (error) {
      failedDeliveries++;
      lastError =
        error instanceof TaskCancelledError ? new Error(`the sink did not answer within ${timeoutMs} ms`, { cause: error }) : error;
      throw error;
    }
  };

  /** Splits by stream into lanes delivered side by side; each stream's events stay in order in its lane. */
  const handleBatch = async (events: RecordedEvent[]) => {
    const messages = events.map((event) => toMessage(event, mapping));
    if (concurrency === 1) return deliverOnce(messages);
    const lanes = new Map<number, OutboundMessage[]>();
    for (const message of messages) {
      const lane = partitionOf(message.streamId, concurrency);
      lanes.set(lane, [...(lanes.get(lane) ?? []), message]);
    }
    const outcomes = await Promise.allSettled([...lanes.values()].map(deliverOnce));
    const failed = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected').map((o) => o.reason);
    // A lane that could not reach the sink wins over a refused message: the whole batch waits.
    const first = failed.find(isTransient) ?? failed[0];
    if (first !== undefined) throw first;
  };

  await sink.prepare?.();
  const backend = await backendFor(store);
  let initial = typeof from === 'bigint' ? from : 0n;
  if (from === 'end') {
    // Remember where 'end' was, so a restart continues from there rather than from a later end.
    const existing = (await backend.listCheckpoints()).some((checkpoint) => checkpoint.name.startsWith(`${group}#`));
    if (!existing) {
      initial = await store.headPosition();
      for (let p = 0; p < partitions; p++) await backend.saveCheckpoint({ name: `${group}#${p}`, kind: 'group', position: initial });
    }
  }

  const tail = sharedTail(store);
  const worker: GroupWorker = await joinGroup(store, {
    group,
    member: options.member,
    ...filter,
    partitions,
    from: initial,
    batchSize,
    leaseMs,
    checkpointMs,
    lingerMs,
    // Every connector of this process follows the head through one read of the store.
    subscribe: (options) => tail.subscribe(options),
    retry: retryPolicy,
    onFailure: 'skip',
    handleBatch,
    handler: (event) => deliverOnce([toMessage(event, mapping)]),
    isTransient,
  });

  // With onFailure 'skip' the worker only ends on stop(), or when its store fails for good.
  let failed = false;
  worker.done.catch(() => {
    failed = true;
  });

  const ownParked = async (ids?: number[]) =>
    (await backend.listParked(group)).filter((parked) => ids === undefined || ids.includes(parked.id));

  return {
    name,
    group,
    get breaker() {
      return BREAKER_STATE[breaker.state];
    },
    stats() {
      const failedWith = worker.lastError ?? lastError;
      return {
        name,
        sink: { type: sink.type, target: sink.target },
        breaker: BREAKER_STATE[breaker.state],
        breakerOpened,
        status: stopped ? 'stopped' : failed ? 'failed' : pausedBy ? 'paused' : 'running',
        delivered,
        failedDeliveries,
        ...(failedWith === undefined ? {} : { lastError: String((failedWith as Error)?.message ?? failedWith) }),
        ...(lastDeliveredAt ? { lastDeliveredAt } : {}),
      };
    },
    async progress() {
      const [checkpoints, head, parked] = await Promise.all([backend.listCheckpoints(), store.headPosition(), backend.listParked(group)]);
      const mine = checkpoints.filter((checkpoint) => checkpoint.name.startsWith(`${group}#`)).map((c) => c.position);
      const checkpoint = mine.length < partitions ? initial : mine.reduce((min, p) => (p < min ? p : min));
      return { checkpoint, head, lag: Number(head > checkpoint ? head - checkpoint : 0n), parked: parked.length };
    },
    listParked: () => ownParked(),
    replayParked: (ids) => worker.replayParked(ids),
    async skipParked(ids) {
      const parked = await ownParked(ids);
      for (const item of parked) await backend.deleteParked(item.id);
      return parked.length;
    },
    pause() {
      pausedBy ??= breaker.isolate();
    },
    resume() {
      pausedBy?.dispose();
      pausedBy = undefined;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      pausedBy?.dispose();
      await worker.stop();
      await sink.close();
    },
  };
}
