/** The in-memory store: for tests and examples. Same contract as every backend, no durability. */
import { StoreClosedError, WrongExpectedVersionError } from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
import { AppendSignal, liveReadAll, pagedReadAll } from '../../core/reading.js';
import { traceAppend } from '../../core/tracing.js';
import {
  type AppendOptions,
  type AppendResult,
  DEFAULT_LIMITS,
  type EventStore,
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
  categoryOf,
  matchesFilter,
  type NormalizedReadAll,
  normalizeReadAllOptions,
  normalizeReadOptions,
  prepareEvents,
  versionMatches,
} from '../../core/validation.js';
import type { ProjectionSupport } from '../../projections/backend.js';
import { copy } from './rows.js';

export interface MemoryStoreOptions {
  limits?: Partial<StoreLimits>;
}

/** A memory store; its projection state lives as long as the store object. */
export type MemoryEventStore = EventStore & ProjectionSupport;

export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryEventStore {
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log: RecordedEvent[] = [];
  const streams = new Map<string, RecordedEvent[]>();
  const byId = new Map<string, RecordedEvent>();
  const snapshots = new Map<string, Snapshot>();
  const signal = new AppendSignal();
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new StoreClosedError('memory');
  };

  // The events of each category and of each type, in position order: a filtered read walks the
  // shortest list that holds all its matches instead of the whole log.
  const byCategory = new Map<string, RecordedEvent[]>();
  const byType = new Map<string, RecordedEvent[]>();
  const addTo = (index: Map<string, RecordedEvent[]>, key: string, event: RecordedEvent) => {
    const list = index.get(key);
    if (list) list.push(event);
    else index.set(key, [event]);
  };

  const readPage = async (after: bigint, limit: number, filter: NormalizedReadAll) => {
    assertOpen();
    const lists = filter.category
      ? [byCategory.get(filter.category) ?? []]
      : filter.types
        ? filter.types.map((type) => byType.get(type) ?? [])
        : [log];
    const page = lists.flatMap((list) => matchesAfter(list, after, limit, filter));
    // Several types: each list's first `limit` matches, merged by position.
    if (lists.length > 1) page.sort((a, b) => (a.position < b.position ? -1 : 1));
    return page.slice(0, limit).map(copy);
  };

  return {
    backend: 'memory',
    limits,

    async projectionBackend() {
      const { createMemoryBackend } = await import('./projections.js');
      return createMemoryBackend();
    },

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      return traceAppend('memory', stream, events, async () => {
        assertOpen();
        assertStreamId(stream);
        const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
        assertExpectedVersion(expected);
        const prepared = prepareEvents(events, limits);
        const existing = streams.get(stream) ?? [];
        const stored = prepared.flatMap((event) => byId.get(event.id) ?? []);
        if (stored.length > 0) return resolveRetry(stream, expected, prepared, stored);
        const actual = existing.length;
        if (!versionMatches(expected, actual)) throw new WrongExpectedVersionError(stream, expected, actual);
        if (prepared.length === 0) return { streamVersion: actual, position: BigInt(log.length) };
        // Never before the head's time, should the clock step back: recordedAt follows positions.
        const now = new Date().toISOString();
        const headAt = log.at(-1)?.recordedAt;
        const recordedAt = headAt !== undefined && headAt > now ? headAt : now;
        for (const event of prepared) {
          const recorded: RecordedEvent = {
            id: event.id,
            type: event.type,
            data: structuredClone(event.data),
            metadata: structuredClone(event.metadata),
            occurredAt: event.occurredAt ?? recordedAt,
            streamId: stream,
            streamVersion: existing.length + 1,
            position: BigInt(log.length + 1),
            recordedAt,
          };
          existing.push(recorded);
          log.push(recorded);
          byId.set(recorded.id, recorded);
          addTo(byType, recorded.type, recorded);
          const category = categoryOf(stream);
          if (category !== undefined) addTo(byCategory, category, recorded);
        }
        streams.set(stream, existing);
        signal.notify();
        return { streamVersion: existing.length, position: BigInt(log.length) };
      });
    },

    async *read(stream: string, opts?: ReadOptions) {
      assertOpen();
      assertStreamId(stream);
      const { from, backward, limit } = normalizeReadOptions(opts);
      const events = streams.get(stream) ?? [];
      let returned = 0;
      if (backward) {
        for (let v = Math.min(from ?? events.length, events.length); v >= 1 && returned < limit; v--, returned++) {
          yield copy(events[v - 1] as RecordedEvent);
        }
      } else {
        for (let v = Math.max(from ?? 1, 1); v <= events.length && returned < limit; v++, returned++) {
          yield copy(events[v - 1] as RecordedEvent);
        }
      }
    },

    async *readAll(opts?: ReadAllOptions) {
      assertOpen();
      yield* pagedReadAll(readPage, normalizeReadAllOptions(opts), async () => BigInt(log.length));
    },

    subscribe(opts?: SubscribeOptions) {
      return liveReadAll(
        {
          readPage,
          headPosition: async () => BigInt(log.length),
          signal,
          pollMs: 60_000,
          isClosed: () => closed,
          backend: 'memory',
        },
        opts,
      );
    },

    async streamVersion(stream: string) {
      assertOpen();
      assertStreamId(stream);
      return streams.get(stream)?.length ?? 0;
    },

    async headPosition() {
      assertOpen();
      return BigInt(log.length);
    },

    async listStreams(opts: ListStreamsOptions = {}): Promise<StreamInfo[]> {
      assertOpen();
      const { prefix = '', after = '', limit = 100 } = opts;
      return [...streams.keys()]
        .filter((id) => id.startsWith(prefix) && id > after)
        .sort()
        .slice(0, limit)
        .map((streamId) => {
          const last = (streams.get(streamId) as RecordedEvent[]).at(-1) as RecordedEvent;
          return { streamId, version: last.streamVersion, lastPosition: last.position, lastRecordedAt: last.recordedAt };
        });
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      return { events: log.length, streams: streams.size, headPosition: BigInt(log.length) };
    },

    async saveSnapshot(snapshot: Snapshot) {
      assertOpen();
      assertStreamId(snapshot.streamId);
      snapshots.set(`${snapshot.streamId}\u0000${snapshot.name}`, structuredClone(snapshot));
    },

    async loadSnapshot(stream: string, name: string) {
      assertOpen();
      const found = snapshots.get(`${stream}\u0000${name}`);
      return found && structuredClone(found);
    },

    async close() {
      closed = true;
      signal.notify();
    },
  };
}

/** Up to `limit` events of `list` (in position order) with position > `after` that pass the filter. */
function matchesAfter(list: RecordedEvent[], after: bigint, limit: number, filter: NormalizedReadAll): RecordedEvent[] {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((list[mid] as RecordedEvent).position <= after) low = mid + 1;
    else high = mid;
  }
  const matches: RecordedEvent[] = [];
  for (let i = low; i < list.length && matches.length < limit; i++) {
    const event = list[i] as RecordedEvent;
    if (matchesFilter(event, filter)) matches.push(event);
  }
  return matches;
}
