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
  matchesFilter,
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

  const readPage = async (after: bigint, limit: number, filter: { types?: string[]; streamPrefix?: string }) => {
    assertOpen();
    // Positions are 1..n with no gaps here, so position p sits at index p-1.
    const page: RecordedEvent[] = [];
    for (let i = Number(after); i < log.length && page.length < limit; i++) {
      const event = log[i] as RecordedEvent;
      if (matchesFilter(event, filter)) page.push(copy(event));
    }
    return page;
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
