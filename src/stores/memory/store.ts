/** The in-memory store: for tests and examples. Same contract as every backend, no durability. */
import { StoreClosedError, StreamDeletedError, WrongExpectedVersionError } from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
import { assertMasterKey, SUBJECTS_STREAM, storePersonalData } from '../../core/personal-data.js';
import { AppendSignal, liveReadAll, pagedReadAll } from '../../core/reading.js';
import {
  assertStartVersion,
  firstVisibleVersion,
  hasEffect,
  isVisible,
  type LifecycleRecord,
  lifecycleOf,
  normalizeStreamMetadata,
} from '../../core/retention.js';
import { traceAppend } from '../../core/tracing.js';
import {
  type AppendOptions,
  type AppendResult,
  DEFAULT_LIMITS,
  type DeleteStreamOptions,
  type EventStore,
  type ExpectedVersion,
  type ListStreamsOptions,
  type NewEvent,
  type ReadAllOptions,
  type ReadOptions,
  type RecordedEvent,
  type Snapshot,
  type StoreLimits,
  type StoreStats,
  type StreamInfo,
  type StreamLifecycleInfo,
  type StreamMetadata,
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
  type PreparedEvent,
  prepareEvents,
  versionMatches,
} from '../../core/validation.js';
import type { ProjectionSupport } from '../../projections/backend.js';
import { copy } from './rows.js';
import { createMemoryKeyTable } from './subject-keys.js';

export interface MemoryStoreOptions {
  limits?: Partial<StoreLimits>;
  /** Wraps each subject key (AES-256-GCM, 32 bytes); see docs/lifecycle.md#forget-a-person. */
  masterKey?: Uint8Array;
}

/** A memory store; its projection state lives as long as the store object. */
export type MemoryEventStore = EventStore & ProjectionSupport;

export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryEventStore {
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const { masterKey } = options;
  assertMasterKey(masterKey);
  // A scavenge leaves holes (undefined) so that index = position - 1 and = version - 1 still hold.
  const log: (RecordedEvent | undefined)[] = [];
  const streams = new Map<string, (RecordedEvent | undefined)[]>();
  /** Streams a restore started at a version (restoreStreamStart): reads begin after it. */
  const startedAt = new Map<string, number>();
  const byId = new Map<string, RecordedEvent>();
  const lifecycles = new Map<string, LifecycleRecord>();
  /** The last event of each stream as it was appended (a scavenge may remove the event itself). */
  const heads = new Map<string, { lastPosition: bigint; lastRecordedAt: string }>();
  const snapshots = new Map<string, Snapshot>();
  let headRecordedAt: string | undefined;
  const signal = new AppendSignal();
  const keyTable = createMemoryKeyTable((dropped) => {
    for (const key of snapshots.keys()) if (dropped.includes(key.slice(0, key.indexOf('\u0000')))) snapshots.delete(key);
  });
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new StoreClosedError('memory');
  };
  const personal = storePersonalData(keyTable, masterKey, assertOpen);

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
    const now = Date.now();
    const wanted = (event: RecordedEvent) => matchesFilter(event, filter) && visible(event, now);
    let page: RecordedEvent[];
    if (filter.category || filter.types) {
      const lists = filter.category
        ? [byCategory.get(filter.category) ?? []]
        : (filter.types as string[]).map((type) => byType.get(type) ?? []);
      page = lists.flatMap((list) => matchesAfter(list, after, limit, wanted));
      // Several types: each list's first `limit` matches, merged by position.
      if (lists.length > 1) page.sort((a, b) => (a.position < b.position ? -1 : 1));
      page = page.slice(0, limit);
    } else {
      // Positions are 1..n; a scavenge leaves holes, so position p still sits at index p-1.
      page = [];
      for (let i = Number(after); i < log.length && page.length < limit; i++) {
        const event = log[i];
        if (event && wanted(event)) page.push(event);
      }
    }
    const copies = page.map(copy);
    return filter.sealed ? copies : personal.open(copies);
  };

  const visible = (event: RecordedEvent, now: number): boolean => {
    const record = lifecycles.get(event.streamId);
    return !record || isVisible(event, record, streams.get(event.streamId)?.length ?? 0, now);
  };

  const assertNotTombstoned = (stream: string) => {
    if (lifecycles.get(stream)?.tombstoned) throw new StreamDeletedError(stream);
  };

  /** An append after the stream id check (forget appends to the system stream `$subjects`). */
  function write(stream: string, events: NewEvent[], opts: AppendOptions): Promise<AppendResult> {
    try {
      const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
      assertExpectedVersion(expected);
      const prepared = prepareEvents(events, limits);
      return personal.append(stream, prepared, () => commit(stream, expected, prepared));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async function commit(stream: string, expected: ExpectedVersion, prepared: PreparedEvent[]): Promise<AppendResult> {
    const existing = streams.get(stream) ?? [];
    const stored = prepared.flatMap((event) => byId.get(event.id) ?? []);
    if (stored.length > 0) return resolveRetry(stream, expected, prepared, await personal.open(stored.map(copy)));
    assertNotTombstoned(stream);
    const actual = existing.length;
    if (!versionMatches(expected, actual)) throw new WrongExpectedVersionError(stream, expected, actual);
    if (prepared.length === 0) return { streamVersion: actual, position: BigInt(log.length) };
    // Never before the head's time, should the clock step back: recordedAt follows positions.
    const now = new Date().toISOString();
    const recordedAt = headRecordedAt !== undefined && headRecordedAt > now ? headRecordedAt : now;
    headRecordedAt = recordedAt;
    const category = categoryOf(stream);
    for (const event of prepared) {
      const recorded: RecordedEvent = {
        id: event.id,
        type: event.type,
        // The stored form: personal fields sealed (the JSON is what a database would hold).
        data: JSON.parse(event.dataJson),
        metadata: JSON.parse(event.metadataJson),
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
      if (category !== undefined) addTo(byCategory, category, recorded);
    }
    streams.set(stream, existing);
    heads.set(stream, { lastPosition: BigInt(log.length), lastRecordedAt: recordedAt });
    signal.notify();
    return { streamVersion: existing.length, position: BigInt(log.length) };
  }

  return {
    backend: 'memory',
    limits,

    async projectionBackend() {
      const { createMemoryBackend } = await import('./projections.js');
      return createMemoryBackend();
    },

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      return traceAppend('memory', stream, events, () => {
        try {
          assertOpen();
          assertStreamId(stream);
        } catch (error) {
          return Promise.reject(error);
        }
        return write(stream, events, opts);
      });
    },

    async *read(stream: string, opts?: ReadOptions) {
      assertOpen();
      assertStreamId(stream);
      const { from, backward, limit } = normalizeReadOptions(opts);
      const events = streams.get(stream) ?? [];
      const floor = Math.max(firstVisibleVersion(lifecycles.get(stream), events.length), (startedAt.get(stream) ?? 0) + 1);
      const now = Date.now();
      const take = (v: number): RecordedEvent | undefined => {
        const event = events[v - 1];
        return event && isVisible(event, lifecycles.get(stream), events.length, now) ? copy(event) : undefined;
      };
      const page: RecordedEvent[] = [];
      if (backward) {
        for (let v = Math.min(from ?? events.length, events.length); v >= floor && page.length < limit; v--) {
          const event = take(v);
          if (event) page.push(event);
        }
      } else {
        for (let v = Math.max(from ?? 1, floor); v <= events.length && page.length < limit; v++) {
          const event = take(v);
          if (event) page.push(event);
        }
      }
      yield* await personal.open(page);
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
          const head = heads.get(streamId) as { lastPosition: bigint; lastRecordedAt: string };
          return { streamId, version: streams.get(streamId)?.length ?? 0, ...head };
        });
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      return { events: byId.size, streams: streams.size, headPosition: BigInt(log.length) };
    },

    async setStreamMetadata(stream: string, metadata: StreamMetadata) {
      assertOpen();
      assertStreamId(stream);
      const normalized = normalizeStreamMetadata(metadata);
      assertNotTombstoned(stream);
      const { deletedVersion } = lifecycles.get(stream) ?? {};
      const record: LifecycleRecord = { ...normalized, ...(deletedVersion === undefined ? {} : { deletedVersion }) };
      if (hasEffect(record)) lifecycles.set(stream, record);
      else lifecycles.delete(stream);
      signal.notify();
    },

    async getStreamMetadata(stream: string) {
      assertOpen();
      assertStreamId(stream);
      return lifecycleOf(lifecycles.get(stream), streams.get(stream)?.length ?? 0);
    },

    async deleteStream(stream: string, opts: DeleteStreamOptions = {}) {
      assertOpen();
      assertStreamId(stream);
      const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
      assertExpectedVersion(expected);
      const record = lifecycles.get(stream) ?? {};
      const version = streams.get(stream)?.length ?? 0;
      if (record.tombstoned) {
        if (opts.hard) return { streamVersion: version };
        throw new StreamDeletedError(stream);
      }
      if (!versionMatches(expected, version)) throw new WrongExpectedVersionError(stream, expected, version);
      if (opts.hard) lifecycles.set(stream, { ...record, tombstoned: true });
      else if (version > 0) lifecycles.set(stream, { ...record, deletedVersion: version });
      // A snapshot folds the deleted events: the stream starts afresh without it.
      for (const key of snapshots.keys()) if (key.startsWith(`${stream}\u0000`)) snapshots.delete(key);
      signal.notify();
      return { streamVersion: version };
    },

    async listStreamLifecycles(opts: { after?: string; limit?: number } = {}): Promise<StreamLifecycleInfo[]> {
      assertOpen();
      const { after = '', limit = 100 } = opts;
      return [...lifecycles.keys()]
        .filter((id) => id > after)
        .sort()
        .slice(0, limit)
        .map((streamId) => {
          const version = streams.get(streamId)?.length ?? 0;
          return { streamId, version, ...lifecycleOf(lifecycles.get(streamId), version) };
        });
    },

    async scavenge() {
      assertOpen();
      const now = Date.now();
      let removed = 0;
      for (const [i, event] of log.entries()) {
        if (!event || visible(event, now)) continue;
        log[i] = undefined;
        (streams.get(event.streamId) as (RecordedEvent | undefined)[])[event.streamVersion - 1] = undefined;
        byId.delete(event.id);
        removed++;
      }
      // The category and type lists must not bring removed events back should settings change.
      if (removed > 0) {
        for (const index of [byCategory, byType]) {
          for (const [key, list] of index)
            index.set(
              key,
              list.filter((event) => byId.get(event.id) === event),
            );
        }
      }
      return { removed };
    },

    async restoreStreamStart(stream: string, version: number) {
      assertOpen();
      assertStreamId(stream);
      assertStartVersion(version);
      const current = streams.get(stream)?.length ?? 0;
      if (current === version) return; // an import resumed
      assertNotTombstoned(stream);
      if (current > 0) throw new WrongExpectedVersionError(stream, 'no_stream', current);
      // Versions 1..version are gone, as after a scavenge: index = version - 1 still holds, in a
      // sparse array (no slot allocated for them, however high the version), which reads skip.
      const gone: (RecordedEvent | undefined)[] = [];
      gone.length = version;
      streams.set(stream, gone);
      startedAt.set(stream, version);
      heads.set(stream, { lastPosition: 0n, lastRecordedAt: new Date().toISOString() });
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

    ...personal.methods((event) => commit(SUBJECTS_STREAM, 'any', prepareEvents([event], limits))),

    async close() {
      // Appends waiting for a subject key were accepted: they go in first.
      await personal.settled();
      closed = true;
      signal.notify();
    },
  };
}

/** Up to `limit` events of `list` (in position order) with position > `after` that pass the filter. */
function matchesAfter(list: RecordedEvent[], after: bigint, limit: number, wanted: (event: RecordedEvent) => boolean): RecordedEvent[] {
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
    if (wanted(event)) matches.push(event);
  }
  return matches;
}
