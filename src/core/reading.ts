/**
 * Paging and live-tail machinery shared by every backend. A backend supplies "read one page
 * after position p" and an AppendSignal; this file turns those into readAll and subscribe.
 */
import { InvalidArgumentError, PositionBeyondHeadError, StoreClosedError } from './errors.js';
import type { RecordedEvent, SubscribeOptions } from './types.js';
import { type NormalizedReadAll, normalizeReadAllOptions } from './validation.js';

export const PAGE_SIZE = 500;

/** Reads up to `limit` events with position > `after` that pass the filter, in position order. */
export type ReadAllPage = (after: bigint, limit: number, filter: NormalizedReadAll) => Promise<RecordedEvent[]>;

/**
 * Wakes live readers when something was appended. `generation` is read before a read; waiting
 * with that generation returns at once if an append happened in between, so no wake-up is lost.
 */
export class AppendSignal {
  private generation_ = 0;
  /** The highest position announced through notifyThrough. */
  private announced = 0n;
  private readonly waiters = new Set<() => void>();

  get generation(): number {
    return this.generation_;
  }

  notify(): void {
    this.generation_++;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /**
   * notify() for a commit that left the log's head at `position`, unless a position at least as
   * high was announced already: a commit announced twice (by the process that made it and by the
   * database's notification) wakes readers once. Every position up to `position` is readable by
   * then, since commits become visible in position order.
   */
  notifyThrough(position: bigint): void {
    if (position <= this.announced) return;
    this.announced = position;
    this.notify();
  }

  /** Resolves after a notify() later than `since`, after `timeoutMs`, or when `signal` aborts. */
  wait(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.generation_ !== since || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }
}

/**
 * Throws PositionBeyondHeadError when `after` is beyond the head. Called only when a read from
 * `after` found nothing, which is the only time it can be (an event after it proves it is not).
 */
async function assertNotBeyondHead(after: bigint, headPosition: () => Promise<bigint>): Promise<void> {
  if (after === 0n) return;
  const head = await headPosition();
  if (after > head) throw new PositionBeyondHeadError(after, head);
}

export async function* pagedReadAll(
  readPage: ReadAllPage,
  filter: NormalizedReadAll,
  headPosition: () => Promise<bigint>,
): AsyncGenerator<RecordedEvent> {
  let after = filter.from;
  let remaining = filter.limit;
  while (remaining > 0) {
    const pageSize = Math.min(PAGE_SIZE, remaining);
    const page = await readPage(after, pageSize, filter);
    if (page.length === 0 && after === filter.from) await assertNotBeyondHead(after, headPosition);
    for (const event of page) yield event;
    remaining -= page.length;
    if (page.length < pageSize) return;
    after = (page[page.length - 1] as RecordedEvent).position;
  }
}

export interface LiveSource {
  readPage: ReadAllPage;
  headPosition(): Promise<bigint>;
  signal: AppendSignal;
  /** How long to sleep without a wake-up before reading again (catches writers the signal can't see). */
  pollMs: number;
  isClosed(): boolean;
  backend: string;
}

/** Catch-up, then live. Pull-based: a slow consumer slows reading, memory stays at one page. */
export async function* liveReadAll(source: LiveSource, opts: SubscribeOptions = {}): AsyncGenerator<RecordedEvent> {
  const { from = 'start', signal } = opts;
  if (!(from === 'start' || from === 'end' || (typeof from === 'bigint' && from >= 0n))) {
    throw new InvalidArgumentError('from', `got ${String(from)}`, "'start', 'end' or a position as a bigint ≥ 0n");
  }
  if (source.isClosed()) throw new StoreClosedError(source.backend);
  const filter = normalizeReadAllOptions({ types: opts.types, streamPrefix: opts.streamPrefix, category: opts.category });
  let after = from === 'start' ? 0n : from === 'end' ? await source.headPosition() : from;
  // A position beyond the head (a restored store) fails at once, and also while live: nothing
  // after `after` may mean the head fell behind it, so an empty page checks the head, at most
  // once per poll interval.
  let headCheckedAt: number | undefined;
  while (!signal?.aborted && !source.isClosed()) {
    const generation = source.signal.generation;
    const page = await source.readPage(after, PAGE_SIZE, filter);
    const headDue = headCheckedAt === undefined || Date.now() - headCheckedAt >= source.pollMs;
    if (page.length === 0 && after > 0n && headDue && !signal?.aborted && !source.isClosed()) {
      headCheckedAt = Date.now();
      const head = await source.headPosition();
      if (signal?.aborted || source.isClosed()) return;
      if (after > head) throw new PositionBeyondHeadError(after, head);
    }
    for (const event of page) {
      if (signal?.aborted) return;
      yield event;
      after = event.position;
    }
    if (page.length < PAGE_SIZE) await source.signal.wait(generation, source.pollMs, signal);
  }
}
