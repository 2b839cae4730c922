/**
 * Retention and deletion (issue 13; docs/lifecycle.md#retention-and-deletion), run by the shared
 * contract suite: stream metadata hides events at once, soft and hard deletes, scavenges that
 * remove events without moving a version or a position, and live readers across all of it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  InvalidArgumentError,
  type NewEvent,
  type RecordedEvent,
  StreamDeletedError,
  type StreamMetadata,
  WrongExpectedVersionError,
} from '../../src/index.js';
import { collect, sleep, take } from '../helpers/collect.js';

const ev = (type: string, data: NewEvent['data'] = {}): NewEvent => ({ type, data });
const versions = (events: RecordedEvent[]) => events.map((e) => e.streamVersion);
const appendN = async (store: EventStore, stream: string, n: number, from = 1) =>
  store.append(
    stream,
    Array.from({ length: n }, (_, i) => ev('Counted', { n: from + i })),
  );

export function describeRetention(open: () => Promise<EventStore>, propertyRuns: number): void {
  describe('retention and deletion', () => {
    it('maxCount and truncateBefore hide events from read, readAll and subscribe at once', async () => {
      const store = await open();
      await appendN(store, 'kept-1', 5);
      await appendN(store, 'other-1', 2);
      await store.setStreamMetadata('kept-1', { maxCount: 2 });
      expect(await store.getStreamMetadata('kept-1')).toEqual({ maxCount: 2 });
      expect(versions(await collect(store.read('kept-1')))).toEqual([4, 5]);
      expect(versions(await collect(store.read('kept-1', { direction: 'backward' })))).toEqual([5, 4]);
      expect(versions(await collect(store.read('kept-1', { from: 1, limit: 1 })))).toEqual([4]);
      const all = await collect(store.readAll());
      expect(all.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual(['kept-1@4', 'kept-1@5', 'other-1@1', 'other-1@2']);
      expect(all.map((e) => e.streamVersion)).toEqual([4, 5, 1, 2]);
      // A new event pushes the window on.
      await appendN(store, 'kept-1', 1, 6);
      expect(versions(await collect(store.read('kept-1')))).toEqual([5, 6]);
      await store.setStreamMetadata('kept-1', { truncateBefore: 3 });
      expect(versions(await collect(store.read('kept-1')))).toEqual([3, 4, 5, 6]);
      expect(versions(await take(store.subscribe({ streamPrefix: 'kept-1' }), 4))).toEqual([3, 4, 5, 6]);
      // {} clears the metadata: everything is visible again until a scavenge removes it.
      await store.setStreamMetadata('kept-1', {});
      expect(await store.getStreamMetadata('kept-1')).toEqual({});
      expect(versions(await collect(store.read('kept-1')))).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('maxAgeSeconds hides events recorded longer ago', async () => {
      const store = await open();
      await appendN(store, 'aged-1', 2);
      await store.setStreamMetadata('aged-1', { maxAgeSeconds: 1 });
      expect(versions(await collect(store.read('aged-1')))).toEqual([1, 2]);
      await sleep(1100);
      await appendN(store, 'aged-1', 1, 3);
      expect(versions(await collect(store.read('aged-1')))).toEqual([3]);
      expect(versions(await collect(store.readAll()))).toEqual([3]);
    });

    it('rejects bad metadata with a typed error and keeps the old one', async () => {
      const store = await open();
      await appendN(store, 'meta-1', 1);
      await store.setStreamMetadata('meta-1', { maxCount: 3 });
      for (const bad of [{ maxCount: 0 }, { maxAgeSeconds: 1.5 }, { truncateBefore: -1 }, { maxCount: '2' }, { ttl: 5 }, null]) {
        await expect(store.setStreamMetadata('meta-1', bad as unknown as StreamMetadata)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(await store.getStreamMetadata('meta-1')).toEqual({ maxCount: 3 });
    });

    it('soft delete: reads find nothing, a later append continues the versions', async () => {
      const store = await open();
      await appendN(store, 'soft-1', 3);
      await expect(store.deleteStream('soft-1', { expectedVersion: 2 })).rejects.toBeInstanceOf(WrongExpectedVersionError);
      expect(await store.getStreamMetadata('soft-1')).toEqual({});
      expect(await store.deleteStream('soft-1', { expectedVersion: 3 })).toEqual({ streamVersion: 3 });
      expect(await store.getStreamMetadata('soft-1')).toEqual({ deleted: 'soft' });
      expect(await collect(store.read('soft-1'))).toEqual([]);
      expect(await collect(store.readAll())).toEqual([]);
      expect(await store.streamVersion('soft-1')).toBe(3);
      await store.append('soft-1', [ev('Again')], { expectedVersion: 3 });
      expect(await store.getStreamMetadata('soft-1')).toEqual({});
      const events = await collect(store.read('soft-1'));
      expect(events.map((e) => [e.type, e.streamVersion])).toEqual([['Again', 4]]);
    });

    it("a delete drops the stream's snapshots (they fold the deleted events), no other stream's", async () => {
      const store = await open();
      await appendN(store, 'snap-1', 2);
      const snapshot = (streamId: string) => ({
        streamId,
        name: 'total',
        streamVersion: 2,
        snapshotVersion: 1,
        state: { n: 2 },
        takenAt: new Date().toISOString(),
      });
      await store.saveSnapshot(snapshot('snap-1'));
      await store.saveSnapshot(snapshot('snap-10'));
      await store.deleteStream('snap-1');
      expect(await store.loadSnapshot('snap-1', 'total')).toBeUndefined();
      expect(await store.loadSnapshot('snap-10', 'total')).toMatchObject({ state: { n: 2 } });
    });

    it('hard delete: every later append fails with StreamDeleted, reads find nothing', async () => {
      const store = await open();
      await appendN(store, 'hard-1', 2);
      await store.deleteStream('hard-1', { hard: true, expectedVersion: 2 });
      expect(await store.getStreamMetadata('hard-1')).toEqual({ deleted: 'hard' });
      expect(await collect(store.read('hard-1'))).toEqual([]);
      for (const expectedVersion of ['any', 2, 'exists', 'no_stream'] as const) {
        const error = await store.append('hard-1', [ev('Late')], { expectedVersion }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StreamDeletedError);
        expect((error as StreamDeletedError).details).toEqual({ stream: 'hard-1' });
      }
      await expect(store.append('hard-1', [])).rejects.toBeInstanceOf(StreamDeletedError);
      await expect(store.setStreamMetadata('hard-1', { maxCount: 1 })).rejects.toBeInstanceOf(StreamDeletedError);
      await expect(store.deleteStream('hard-1')).rejects.toBeInstanceOf(StreamDeletedError);
      // Deleting for good again is an idempotent retry.
      expect(await store.deleteStream('hard-1', { hard: true })).toEqual({ streamVersion: 2 });
      // A stream that never existed can be tombstoned too.
      await store.deleteStream('never-1', { hard: true, expectedVersion: 'no_stream' });
      await expect(store.append('never-1', [ev('First')])).rejects.toBeInstanceOf(StreamDeletedError);
      expect(await collect(store.readAll())).toEqual([]);
      const listed = await store.listStreamLifecycles();
      expect(listed.map((s) => [s.streamId, s.deleted, s.version])).toEqual([
        ['hard-1', 'hard', 2],
        ['never-1', 'hard', 0],
      ]);
    });

    it('scavenge removes hidden events and keeps every version and position', async () => {
      const store = await open();
      // One append per event: on NATS an append is one message, removed only when all of it is hidden.
      for (let i = 1; i <= 4; i++) await appendN(store, 'sc-a', 1, i);
      await appendN(store, 'sc-b', 3);
      await appendN(store, 'sc-c', 2);
      const before = await collect(store.readAll());
      await store.setStreamMetadata('sc-a', { maxCount: 1 });
      await store.deleteStream('sc-b');
      const head = await store.headPosition();
      expect((await store.stats()).streams).toBe(3);
      // Metadata of a stream with no events yet counts nothing.
      await store.setStreamMetadata('sc-none', { maxCount: 1 });
      // Hidden events are still stored (and counted) until a scavenge removes them.
      expect((await store.stats()).events).toBe(9);
      const { removed } = await store.scavenge();
      // Streams are still counted, whatever of them was removed; removed events are not.
      expect(await store.stats()).toMatchObject({ streams: 3, events: 9 - removed });
      expect(removed).toBeGreaterThan(0);
      expect(removed).toBeLessThanOrEqual(6);
      expect(await store.headPosition()).toBe(head);
      const expected = before.filter((e) => (e.streamId === 'sc-a' && e.streamVersion === 4) || e.streamId === 'sc-c');
      expect(await collect(store.readAll())).toEqual(expected);
      // Metadata cleared after the scavenge: removed events stay gone, the versions stay.
      await store.setStreamMetadata('sc-a', {});
      expect(versions(await collect(store.read('sc-a')))).toEqual([4]);
      expect(await store.streamVersion('sc-a')).toBe(4);
      expect(await store.streamVersion('sc-b')).toBe(3);
      const next = await store.append('sc-b', [ev('Back')], { expectedVersion: 3 });
      expect(next.streamVersion).toBe(4);
      expect(next.position > head).toBe(true);
      const again = await store.append('sc-a', [ev('More')], { expectedVersion: 4 });
      expect(again.streamVersion).toBe(5);
      expect(versions(await collect(store.read('sc-b')))).toEqual([4]);
      // A reader resuming after a removed event's position misses nothing and stalls on nothing.
      const resumed = await collect(store.readAll({ from: (before[0] as RecordedEvent).position }));
      expect(resumed.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual(['sc-a@4', 'sc-c@1', 'sc-c@2', 'sc-b@4', 'sc-a@5']);
    });

    it('a live subscriber runs across deletes and a scavenge without stalling', async () => {
      const store = await open();
      const controller = new AbortController();
      const seen: RecordedEvent[] = [];
      const done = (async () => {
        for await (const event of store.subscribe({ signal: controller.signal })) {
          seen.push(event);
          if (event.type === 'Last') return;
        }
      })();
      await appendN(store, 'live-a', 3);
      await appendN(store, 'live-b', 2);
      await store.deleteStream('live-a');
      await store.scavenge();
      await appendN(store, 'live-b', 1, 3);
      await store.append('live-c', [ev('Last')]);
      await Promise.race([done, sleep(10_000).then(() => Promise.reject(new Error(`stalled after ${seen.length} events`)))]);
      controller.abort();
      // What it saw live includes live-a's events (they were visible then), in position order.
      const positions = seen.map((e) => e.position);
      expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions);
      expect(seen.filter((e) => e.streamId === 'live-b').map((e) => e.streamVersion)).toEqual([1, 2, 3]);
      expect(seen.at(-1)?.type).toBe('Last');
    });

    it('property: after any appends, metadata changes, deletes and scavenges, reads equal the model', async () => {
      type Op =
        | { kind: 'append'; stream: string; count: number }
        | { kind: 'meta'; stream: string; metadata: StreamMetadata }
        | { kind: 'delete'; stream: string; hard: boolean }
        | { kind: 'scavenge' };
      const streamArb = fc.constantFrom('p-a', 'p-b', 'p-c');
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record({ kind: fc.constant('append' as const), stream: streamArb, count: fc.integer({ min: 1, max: 3 }) }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant('meta' as const),
            stream: streamArb,
            metadata: fc.record(
              { maxCount: fc.integer({ min: 1, max: 4 }), truncateBefore: fc.integer({ min: 1, max: 8 }) },
              { requiredKeys: [] },
            ),
          }),
        },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), stream: streamArb, hard: fc.boolean() }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'scavenge' as const }) },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), async (ops) => {
          const store = await open();
          // The model: per stream its version, metadata, deletion, and every event ever appended.
          type Model = { version: number; metadata: StreamMetadata; deletedAt?: number; tombstoned: boolean };
          const model = new Map<string, Model>();
          const appended: { streamId: string; streamVersion: number; n: number }[] = [];
          const lastPositions = new Map<number, bigint>();
          let n = 0;
          const get = (stream: string) => model.get(stream) ?? { version: 0, metadata: {}, tombstoned: false };
          const floor = (m: Model) =>
            m.tombstoned
              ? Number.POSITIVE_INFINITY
              : Math.max(
                  1,
                  m.metadata.truncateBefore ?? 1,
                  (m.deletedAt ?? 0) + 1,
                  m.metadata.maxCount ? m.version - m.metadata.maxCount + 1 : 1,
                );
          // Once hidden at a scavenge, an event is gone even if the metadata later shows it again.
          const removed = new Set<number>();
          let totalRemoved = 0;
          for (const op of ops) {
            if (op.kind === 'append') {
              const m = get(op.stream);
              const attempt = appendN(store, op.stream, op.count, n + 1);
              if (m.tombstoned) {
                await expect(attempt).rejects.toBeInstanceOf(StreamDeletedError);
                continue;
              }
              const result = await attempt;
              for (let i = 1; i <= op.count; i++) appended.push({ streamId: op.stream, streamVersion: m.version + i, n: n + i });
              n += op.count;
              lastPositions.set(n, result.position);
              model.set(op.stream, { ...m, version: m.version + op.count });
            } else if (op.kind === 'meta') {
              const m = get(op.stream);
              const attempt = store.setStreamMetadata(op.stream, op.metadata);
              if (m.tombstoned) await expect(attempt).rejects.toBeInstanceOf(StreamDeletedError);
              else {
                await attempt;
                model.set(op.stream, { ...m, metadata: op.metadata });
              }
            } else if (op.kind === 'delete') {
              const m = get(op.stream);
              const attempt = store.deleteStream(op.stream, { hard: op.hard });
              if (m.tombstoned && !op.hard) await expect(attempt).rejects.toBeInstanceOf(StreamDeletedError);
              else {
                expect((await attempt).streamVersion).toBe(m.version);
                model.set(op.stream, op.hard ? { ...m, tombstoned: true } : { ...m, deletedAt: m.version > 0 ? m.version : m.deletedAt });
              }
            } else {
              const hidden = appended.filter((e) => e.streamVersion < floor(get(e.streamId)));
              const { removed: count } = await store.scavenge();
              // The newest event or message may stay on disk (it anchors the head), hidden all the
              // same, and go at a later scavenge: only hidden events go, each once.
              expect(count).toBeLessThanOrEqual(hidden.length);
              totalRemoved += count;
              expect(totalRemoved).toBeLessThanOrEqual(appended.length);
              for (const e of hidden) removed.add(e.n);
            }
          }
          // An event hidden at a scavenge may have been removed, or kept (a backend keeps the log's
          // newest event, NATS a stream's last message): if the metadata shows it again, it may appear.
          const shown = (e: { streamId: string; streamVersion: number }) => e.streamVersion >= floor(get(e.streamId));
          const expected = appended.filter((e) => !removed.has(e.n) && shown(e));
          const optional = new Set(appended.filter((e) => removed.has(e.n) && shown(e)).map((e) => e.n));
          const nOf = (e: RecordedEvent) => (e.data as { n: number }).n;
          const all = await collect(store.readAll());
          expect(all.filter((e) => !optional.has(nOf(e))).map((e) => [e.streamId, e.streamVersion, nOf(e)])).toEqual(
            expected.map((e) => [e.streamId, e.streamVersion, e.n]),
          );
          const byN = new Map(appended.map((e) => [e.n, e]));
          for (const e of all) {
            expect(byN.get(nOf(e))).toMatchObject({ streamId: e.streamId, streamVersion: e.streamVersion });
            const last = lastPositions.get(nOf(e));
            if (last !== undefined) expect(e.position).toBe(last);
          }
          for (const stream of ['p-a', 'p-b', 'p-c']) {
            const m = get(stream);
            expect(await store.streamVersion(stream)).toBe(m.version);
            const read = await collect(store.read(stream));
            expect(read.map(nOf).filter((x) => !optional.has(x))).toEqual(expected.filter((e) => e.streamId === stream).map((e) => e.n));
            const lifecycle = await store.getStreamMetadata(stream);
            expect(lifecycle.deleted).toBe(
              m.tombstoned ? 'hard' : m.deletedAt !== undefined && m.deletedAt === m.version ? 'soft' : undefined,
            );
          }
        }),
        { numRuns: propertyRuns },
      );
    });
  });
}
