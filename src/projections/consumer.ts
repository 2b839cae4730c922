/**
 * The loop shared by subscriptions, projections and consumer-group workers: pull a batch (whole
 * readAll pages while catching up, then what store.subscribe has ready once live; both are
 * pull-based, so a slow sink slows reading and memory stays at one batch), hand it to a sink that
 * applies it and moves the checkpoint, retry a failing event alone with exponential backoff and
 * jitter, then park it and stop or skip as configured.
 */
import { InvalidArgumentError, LoglineError, StoreClosedError } from '../core/errors.js';
import { traceHandling } from '../core/tracing.js';
import type { EventStore, RecordedEvent, SubscribeOptions } from '../core/types.js';
import { assertCategory, type EventFilter, matchesFilter } from '../core/validation.js';
import { type CheckpointUpdate, EventFailure, type ParkInput, SupersededError } from './backend.js';
import { PositionTimeoutError, ProjectionStoppedError } from './errors.js';

export interface RetryPolicy {
  /** Attempts per event before it is parked, including the first. Default 5. */
  maxAttempts?: number;
  /** Delay before the second attempt; doubles each time. Default 100 ms. */
  initialDelayMs?: number;
  /** Upper bound of one delay. Default 10 s. */
  maxDelayMs?: number;
}

export type OnFailure = 'stop' | 'skip';

export type ConsumerStatus = 'starting' | 'catching-up' | 'live' | 'retrying' | 'stopped' | 'failed';

export type { EventFilter };

/** How a consumer applies what it reads. */
export interface Sink {
  /**
   * Applies `events` (in order) and moves the checkpoint to `through` (≥ the last event). Throws
   * EventFailure when an event's handler failed.
   */
  apply(events: RecordedEvent[], through: bigint): Promise<void>;
  /** Parks an event that kept failing; with `advanceTo`, moves the checkpoint past it in the same step. */
  park(input: ParkInput, advanceTo?: bigint): Promise<void>;
  /** Which events of a batch are this sink's business (the rest only move the checkpoint). */
  wants(event: RecordedEvent): boolean;
}

export interface ConsumerConfig {
  /** The checkpoint's name: a subscription's name, `projection@vN`, or a group. */
  name: string;
  store: EventStore;
  /** Where to start: the stored checkpoint wins; otherwise this. */
  start: () => Promise<bigint>;
  sink: Sink;
  batchSize: number;
  retry: Required<RetryPolicy>;
  onFailure: OnFailure;
  /** Called after each applied batch (rebuild switch, metrics). */
  afterBatch?: (position: bigint) => Promise<void>;
  /** Called when the consumer ends, with the error that ended it, if any. */
  onEnd?: (error?: unknown) => void;
  /** Once live, how long a batch waits for more events after its first (default 0: only what is there). */
  lingerMs?: number;
  /** The live read once caught up (default store.subscribe; connectors share one per process, shared-tail.ts). */
  subscribe?: (options: SubscribeOptions) => AsyncIterable<RecordedEvent>;
}

const IDLE = Symbol('idle');

/**
 * Reads batches from a live iterator: everything that is available without waiting on a timer
 * or the network, up to `max`; with `lingerMs`, also what arrives within that many ms of the
 * batch's first event (fewer, larger batches for a sink that pays per delivery). The pending
 * read is kept for the next batch, never dropped.
 */
export class BatchPuller {
  private readonly iterator: AsyncIterator<RecordedEvent>;
  private pending: Promise<IteratorResult<RecordedEvent>> | undefined;

  constructor(
    iterable: AsyncIterable<RecordedEvent>,
    private readonly max: number,
    private readonly lingerMs = 0,
  ) {
    this.iterator = iterable[Symbol.asyncIterator]();
  }

  /** The next non-empty batch, or undefined when the source ended. */
  async next(): Promise<RecordedEvent[] | undefined> {
    const first = await (this.pending ?? this.iterator.next());
    this.pending = undefined;
    if (first.done) return undefined;
    const batch = [first.value];
    // Without linger, resolves after the current macrotask: reads that finish without I/O or timers win the race.
    let timer: NodeJS.Timeout | undefined;
    const idle =
      this.lingerMs > 0
        ? new Promise<typeof IDLE>((resolve) => (timer = setTimeout(resolve, this.lingerMs, IDLE)))
        : new Promise<typeof IDLE>((resolve) => setImmediate(resolve, IDLE));
    while (batch.length < this.max) {
      const next = this.iterator.next();
      const result = await Promise.race([next, idle]);
      if (result === IDLE) {
        this.pending = next;
        break;
      }
      if (result.done) break;
      batch.push(result.value);
    }
    clearTimeout(timer);
    return batch;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

export const DEFAULT_RETRY: Required<RetryPolicy> = { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 10_000 };

export function normalizeRetry(retry: RetryPolicy | undefined): Required<RetryPolicy> {
  const merged = { ...DEFAULT_RETRY, ...retry };
  for (const [key, value] of Object.entries(merged)) {
    if (!Number.isSafeInteger(value) || value < (key === 'maxAttempts' ? 1 : 0)) {
      throw new InvalidArgumentError(
        `retry.${key}`,
        `got ${JSON.stringify(value)}`,
        key === 'maxAttempts' ? 'an integer ≥ 1' : 'an integer ≥ 0',
      );
    }
  }
  return merged;
}

/** Exponential backoff with full jitter: uniform in [delay/2, delay], delay = initial·2^(attempt-1). */
export function backoffDelay(retry: Required<RetryPolicy>, attempt: number): number {
  const delay = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
  return delay / 2 + Math.random() * (delay / 2);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export function validateFilter(filter: EventFilter): EventFilter {
  if (filter.types !== undefined && !(Array.isArray(filter.types) && filter.types.every((t) => typeof t === 'string'))) {
    throw new InvalidArgumentError('types', `got ${JSON.stringify(filter.types)}`, 'an array of event type names');
  }
  if (filter.streamPrefix !== undefined && typeof filter.streamPrefix !== 'string') {
    throw new InvalidArgumentError('streamPrefix', `got ${typeof filter.streamPrefix}`, 'a string');
  }
  assertCategory(filter.category);
  return {
    types: filter.types?.length ? filter.types : undefined,
    streamPrefix: filter.streamPrefix || undefined,
    category: filter.category,
  };
}

export const filterMatches = (filter: EventFilter) => (event: RecordedEvent) => matchesFilter(event, filter);

export function validateBatchSize(batchSize: unknown, fallback: number): number {
  if (batchSize === undefined) return fallback;
  if (!Number.isSafeInteger(batchSize) || (batchSize as number) < 1 || (batchSize as number) > 100_000) {
    throw new InvalidArgumentError('batchSize', `got ${JSON.stringify(batchSize)}`, 'an integer from 1 to 100000');
  }
  return batchSize as number;
}

interface Waiter {
  position: bigint;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One running consumer: its loop, its position, and the promises waiting on that position. */
export class Consumer {
  private position_ = -1n;
  private status_: ConsumerStatus = 'starting';
  private lastError_: unknown;
  /** Aborted by stop(). */
  private readonly abort = new AbortController();
  /** Aborted by stop() and handOver(): ends the current reading (renewed by takeBack). */
  private reading = new AbortController();
  /** While handed over: wakes the loop, true to read again, false to end. */
  private resume: ((again: boolean) => void) | undefined;
  private readonly waiters = new Set<Waiter>();
  private puller: BatchPuller | undefined;
  private handedOver = false;
  private interrupted_ = false;
  readonly done: Promise<void>;
  /** When the last batch was applied (ms since epoch). */
  lastAppliedAt = 0;

  constructor(private readonly config: ConsumerConfig) {
    this.done = this.run();
    // Callers observe failures through status/lastError/done; never as an unhandled rejection.
    this.done.catch(() => {});
  }

  get name(): string {
    return this.config.name;
  }
  /** Everything at or below this position is processed (-1n before the start is known). */
  get position(): bigint {
    return this.position_;
  }
  get status(): ConsumerStatus {
    return this.status_;
  }
  get lastError(): unknown {
    return this.lastError_;
  }
  /**
   * True when stop() cut a retry short: the event it was retrying is neither done nor failed, and
   * stays behind the checkpoint for the next run (a consumer group's next owner of its partition).
   */
  get interrupted(): boolean {
    return this.interrupted_;
  }

  /** Stops after the batch in flight; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.reading.abort();
    this.resume?.(false);
    await this.done.catch(() => {});
  }

  /**
   * Pauses the reading loop but stays 'live': from now on something else (an inline hook) applies
   * events and calls advance(). Safe to call from afterBatch.
   */
  handOver(): void {
    this.handedOver = true;
    this.reading.abort();
  }

  /**
   * Takes the work back from the inline hook (it met an event it must not fail appends for): the
   * loop reads again from the position reached, with the retry, park and onFailure policy.
   */
  takeBack(): void {
    if (!this.handedOver || this.abort.signal.aborted) return;
    this.handedOver = false;
    this.reading = new AbortController();
    this.resume?.(true);
  }

  /** Resolves once `position` is processed; rejects with PositionTimeoutError after `timeoutMs`. */
  waitForPosition(position: bigint, timeoutMs: number): Promise<void> {
    if (this.position_ >= position) return Promise.resolve();
    if (this.status_ === 'stopped' || this.status_ === 'failed') {
      return Promise.reject(new ProjectionStoppedError(this.config.name, 'it is not running', this.lastError_));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new PositionTimeoutError(this.config.name, position, this.position_, timeoutMs));
      }, timeoutMs);
      const waiter: Waiter = {
        position,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Moves the in-memory position after the backend committed it; wakes waiters. */
  advance(position: bigint): void {
    if (position <= this.position_) return;
    this.position_ = position;
    this.lastAppliedAt = Date.now();
    for (const waiter of this.waiters) {
      if (waiter.position <= position) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  private async run(): Promise<void> {
    let endError: unknown;
    try {
      const from = await this.patiently(() => this.config.start());
      this.advance(from);
      this.status_ = 'catching-up';
      await this.afterBatch(from);
      let after = from;
      for (;;) {
        after = await this.read(after);
        if (this.abort.signal.aborted) break;
        if (this.handedOver) {
          // An inline hook does the work now; wait until it hands it back or we are stopped.
          this.status_ = 'live';
          const again = await new Promise<boolean>((resolve) => (this.resume = resolve));
          this.resume = undefined;
          if (!again) break;
        }
        if (this.reading.signal.aborted) {
          // The live read ended although nothing stopped or handed over the consumer (its
          // subscription ended): read again with a fresh signal after a pause, never in a tight loop.
          this.reading = new AbortController();
          await sleep(this.storeRetryDelay(1), this.abort.signal);
          if (this.abort.signal.aborted) break;
        }
        after = after > this.position_ ? after : this.position_;
        this.status_ = 'catching-up';
      }
      this.status_ = 'stopped';
    } catch (error) {
      endError = error;
      this.lastError_ = error;
      this.status_ =
        error instanceof ProjectionStoppedError || error instanceof SupersededError || error instanceof StoreClosedError
          ? 'stopped'
          : 'failed';
    } finally {
      this.abort.abort();
      this.reading.abort();
      const reason = endError === undefined ? new ProjectionStoppedError(this.config.name, 'it was stopped') : this.stoppedError(endError);
      for (const waiter of this.waiters) waiter.reject(reason);
      this.waiters.clear();
      this.config.onEnd?.(endError);
    }
    if (endError !== undefined) throw endError;
  }

  /** Reads and applies from `after` until stopped or handed over; returns the last position read. */
  private async read(from: bigint): Promise<bigint> {
    const { store, batchSize } = this.config;
    const reading = this.reading;
    const { signal } = reading;
    let after = from;
    // Catch-up: whole pages from readAll (pull-based, one page in memory), until a short page
    // says the head is reached.
    while (!signal.aborted) {
      const batch = await this.patiently(async () => {
        const page: RecordedEvent[] = [];
        for await (const event of store.readAll({ from: after, limit: batchSize })) page.push(event);
        return page;
      });
      if (signal.aborted || batch.length === 0) break;
      await this.applyWithRetries(batch);
      after = (batch[batch.length - 1] as RecordedEvent).position;
      await this.afterBatch(this.position_);
      if (batch.length < batchSize) break;
      // On SQLite a page and its batch complete without I/O, in microtasks: without this turn a
      // catch-up over a large log would hold the event loop (timers, requests) until it ends.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (signal.aborted) return after;
    // Live: the subscription wakes on appends; batches are what is there without waiting.
    this.status_ = 'live';
    const subscribe = this.config.subscribe ?? ((options: SubscribeOptions) => store.subscribe(options));
    this.puller = new BatchPuller(subscribe({ from: after, signal }), batchSize, this.config.lingerMs);
    try {
      while (!signal.aborted) {
        const batch = await this.puller.next();
        if (!batch || signal.aborted) break;
        await this.applyWithRetries(batch);
        after = (batch[batch.length - 1] as RecordedEvent).position;
        await this.afterBatch(this.position_);
      }
    } finally {
      // Abort first: closing waits for the read in flight, which only an abort ends when no event comes.
      reading.abort();
      await this.puller.close().catch(() => {});
      this.puller = undefined;
    }
    return after;
  }

  private afterBatch(position: bigint): Promise<void> {
    const { afterBatch } = this.config;
    return afterBatch ? this.patiently(() => afterBatch(position)) : Promise.resolve();
  }

  /**
   * Runs a step that reads or writes the store (a page, the start position, parking, the
   * afterBatch work) until it succeeds: a lost connection or a busy database is waited out with
   * backoff (status 'retrying'), as the docs promise. Typed errors and stops are final.
   */
  private async patiently<T>(step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await step();
        if (this.status_ === 'retrying') this.status_ = this.puller ? 'live' : 'catching-up';
        return result;
      } catch (error) {
        if (isFinal(error)) throw error;
        this.lastError_ = error;
        this.status_ = 'retrying';
        await sleep(this.storeRetryDelay(attempt), this.abort.signal);
        if (this.abort.signal.aborted) throw this.interruption(error);
      }
    }
  }

  /**
   * Backoff before retrying after a store error: the event retry policy's, but at most 1 s apart.
   * Store errors are transient (a killed connection, a busy database, a restart), and a
   * consumer that sleeps 10 s after each of a series of them falls far behind for no gain.
   */
  private storeRetryDelay(attempt: number): number {
    const { retry } = this.config;
    return backoffDelay({ ...retry, maxAttempts: Number.MAX_SAFE_INTEGER, maxDelayMs: Math.min(retry.maxDelayMs, 1000) }, attempt);
  }

  private stoppedError(error: unknown): ProjectionStoppedError {
    if (error instanceof ProjectionStoppedError) return error;
    return new ProjectionStoppedError(this.config.name, String((error as Error)?.message ?? error), error);
  }

  private interruption(cause: unknown): ProjectionStoppedError {
    this.interrupted_ = true;
    return new ProjectionStoppedError(this.config.name, 'it was stopped while retrying', cause);
  }

  /** Applies a batch; isolates a failing event, retries it alone, parks it. */
  private async applyWithRetries(events: RecordedEvent[]): Promise<void> {
    const { sink } = this.config;
    let rest = events;
    let infrastructureAttempts = 0;
    while (rest.length > 0) {
      const relevant = rest.filter((event) => sink.wants(event));
      const through = (rest[rest.length - 1] as RecordedEvent).position;
      try {
        await traceHandling('logline.consumer.batch', { 'logline.consumer': this.config.name }, relevant, () =>
          sink.apply(relevant, through),
        );
        this.advance(through);
        if (this.status_ === 'retrying') this.status_ = this.puller ? 'live' : 'catching-up';
        return;
      } catch (error) {
        if (error instanceof SupersededError) throw error;
        if (!(error instanceof EventFailure)) {
          // The backend itself failed (busy, connection lost): retry the whole batch, forever, with backoff.
          this.lastError_ = error;
          this.status_ = 'retrying';
          infrastructureAttempts++;
          await sleep(this.storeRetryDelay(infrastructureAttempts), this.abort.signal);
          if (this.abort.signal.aborted) throw this.interruption(error);
          continue;
        }
        const failing = relevant.find((event) => event.position === error.position);
        if (!failing) throw error;
        const before = rest.filter((event) => event.position < failing.position);
        if (!error.priorApplied) await this.applyWithRetries(before);
        else if (before.length > 0) {
          await sink.apply([], failing.position - 1n);
          this.advance(failing.position - 1n);
        }
        await this.retryAlone(failing, error.cause);
        rest = rest.filter((event) => event.position > failing.position);
      }
    }
  }

  private async retryAlone(event: RecordedEvent, firstError: unknown): Promise<void> {
    const { sink, retry } = this.config;
    let lastError = firstError;
    let attempts = 1;
    let storeFailures = 0;
    while (attempts < retry.maxAttempts) {
      this.status_ = 'retrying';
      this.lastError_ = lastError;
      await sleep(backoffDelay(retry, attempts + storeFailures), this.abort.signal);
      if (this.abort.signal.aborted) throw this.interruption(lastError);
      try {
        await sink.apply([event], event.position);
        this.advance(event.position);
        this.status_ = this.puller ? 'live' : 'catching-up';
        return;
      } catch (error) {
        if (error instanceof SupersededError) throw error;
        if (error instanceof EventFailure) {
          attempts++;
          lastError = error.cause;
        } else {
          // The store failed (a lost connection), not the event: that try does not count.
          storeFailures++;
          this.lastError_ = error;
        }
      }
    }
    const skip = this.config.onFailure === 'skip';
    await this.patiently(() =>
      sink.park({ consumer: this.config.name, event, error: lastError, attempts }, skip ? event.position : undefined),
    );
    this.lastError_ = lastError;
    if (!skip) {
      throw new ProjectionStoppedError(
        this.config.name,
        `event at position ${event.position} (${event.type} in ${event.streamId}) failed ${attempts} times and was parked: ${String((lastError as Error)?.message ?? lastError)}`,
        lastError,
      );
    }
    this.advance(event.position);
    this.status_ = this.puller ? 'live' : 'catching-up';
  }
}

/** Errors that retrying cannot cure: typed (caller's or state) errors, stops, a newer version, a closed store. */
const isFinal = (error: unknown): boolean =>
  error instanceof LoglineError || error instanceof SupersededError || error instanceof EventFailure;

export const checkpointUpdate = (name: string, kind: CheckpointUpdate['kind'], position: bigint): CheckpointUpdate => ({
  name,
  kind,
  position,
});
