/**
 * One live read of a store, shared by the consumers in this process that follow the head (the
 * connectors). Without it, N live consumers each wake on every append and each read the store
 * (on SQLite a synchronous read on the writer's connection): N reads per append. With it, one
 * reader follows the log and keeps the most recent events in memory; a consumer near the head
 * takes its events from there, and one further behind than the buffer reaches reads pages from
 * the store itself until it is near again. Each consumer still pulls at its own pace.
 *
 * The buffer holds a contiguous run of the log: every event in (floor, through]. The reader
 * starts at the head when the first consumer subscribes and stops when the last one leaves.
 */
import { PositionBeyondHeadError } from '../core/errors.js';
import { AppendSignal, PAGE_SIZE } from '../core/reading.js';
import type { EventStore, RecordedEvent, SubscribeOptions } from '../core/types.js';
import { matchesFilter } from '../core/validation.js';

/**
 * Events kept in memory (between BUFFER and 2 × BUFFER): a live consumer is a few events behind
 * the head, and one further behind reads the store. Small, since events may be up to 1 MiB each.
 */
const BUFFER = 500;
/** Longest a consumer waits for the reader without a wake-up before it checks again. */
const POLL_MS = 1_000;

/** One run of the shared reader, from its start until the last consumer leaves or it fails. */
interface Run {
  /** Every event in (floor, through], in position order. */
  events: RecordedEvent[];
  floor: bigint;
  through: bigint;
  /** False until the reader knows where it starts. */
  ready: boolean;
  failure?: unknown;
  /** Consumers reading from this run; the last to leave stops it. */
  consumers: number;
  readonly controller: AbortController;
}

export class SharedTail {
  private run: Run | undefined;
  /** Wakes consumers when the reader added events (or failed). */
  private readonly signal = new AppendSignal();

  constructor(private readonly store: EventStore) {}

  /** Like store.subscribe: catch-up, then live, pull-based. */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<RecordedEvent> {
    const { signal } = options;
    const filter = { types: options.types, streamPrefix: options.streamPrefix };
    const from = options.from ?? 'start';
    let after = from === 'start' ? 0n : from === 'end' ? await this.store.headPosition() : from;
    const run = (this.run ??= this.start());
    run.consumers++;
    try {
      while (!signal?.aborted) {
        if (run.failure !== undefined) throw run.failure;
        const generation = this.signal.generation;
        if (!run.ready) {
          await this.signal.wait(generation, POLL_MS, signal);
          continue;
        }
        if (after < run.floor) {
          // Behind the buffer: a page from the store.
          let read = 0;
          for await (const event of this.store.readAll({ from: after, limit: PAGE_SIZE })) {
            read++;
            if (signal?.aborted) return;
            if (matchesFilter(event, filter)) yield event;
            after = event.position;
          }
          if (read === 0) await this.signal.wait(generation, POLL_MS, signal);
          continue;
        }
        const fresh = run.events.slice(firstAfter(run.events, after));
        for (const event of fresh) {
          if (signal?.aborted) return;
          if (matchesFilter(event, filter)) yield event;
          after = event.position;
        }
        if (fresh.length > 0) continue;
        await this.signal.wait(generation, POLL_MS, signal);
        // Nothing came for a while from beyond what the reader has seen: is `after` beyond the head?
        if (after > run.through && this.signal.generation === generation && !signal?.aborted) {
          const head = await this.store.headPosition();
          if (after > head) throw new PositionBeyondHeadError(after, head);
        }
      }
    } finally {
      if (--run.consumers === 0) {
        if (this.run === run) this.run = undefined;
        run.controller.abort();
      }
    }
  }

  private start(): Run {
    const run: Run = { events: [], floor: 0n, through: 0n, ready: false, consumers: 0, controller: new AbortController() };
    const { signal } = run.controller;
    void (async () => {
      const head = await this.store.headPosition();
      run.floor = run.through = head;
      run.ready = true;
      this.signal.notify();
      for await (const event of this.store.subscribe({ from: head, signal })) {
        run.events.push(event);
        run.through = event.position;
        // Trim in chunks, not per event: at most 2 × BUFFER are held.
        if (run.events.length >= 2 * BUFFER) {
          run.floor = (run.events[BUFFER - 1] as RecordedEvent).position;
          run.events = run.events.slice(BUFFER);
        }
        this.signal.notify();
      }
    })().catch((error) => {
      if (signal.aborted) return;
      run.failure = error;
      // The next consumer to subscribe starts a fresh reader.
      if (this.run === run) this.run = undefined;
      this.signal.notify();
    });
    return run;
  }
}

/** Index of the first event with a position above `after` (binary search; positions ascend). */
function firstAfter(events: RecordedEvent[], after: bigint): number {
  let low = 0;
  let high = events.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((events[mid] as RecordedEvent).position <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

const tails = new WeakMap<EventStore, SharedTail>();

/** The process's shared live read of `store`. */
export function sharedTail(store: EventStore): SharedTail {
  let tail = tails.get(store);
  if (!tail) {
    tail = new SharedTail(store);
    tails.set(store, tail);
  }
  return tail;
}
