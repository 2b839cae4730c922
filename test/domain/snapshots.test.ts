/** Snapshots on every real store: taken per policy, loaded as snapshot + later events, ignored when their version is stale. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Decider, type EventStore, handleCommand, InvalidArgumentError, loadAggregate, takeSnapshot } from '../../src/index.js';
import { collect } from '../helpers/collect.js';
import { storeTargets } from './targets.js';

type Ev = { type: 'Added'; data: { n: number } };
type Cmd = { type: 'Add'; data: { n: number } };
interface Sum {
  total: number;
  count: number;
}

const summing = (snapshots: Decider<Sum, Cmd, Ev>['snapshots']): Decider<Sum, Cmd, Ev> => ({
  name: 'sum',
  initialState: () => ({ total: 0, count: 0 }),
  evolve: (s, e) => ({ total: s.total + e.data.n, count: s.count + 1 }),
  decide: (c) => ({ type: 'Added', data: { n: c.data.n } }),
  snapshots,
});

const add = (n: number): Cmd => ({ type: 'Add', data: { n } });

for (const target of storeTargets()) {
  describe(`snapshots on ${target.name}`, () => {
    let store: EventStore;
    const getStore = async () => (store ??= await target.open());

    it('every N events: stored after the command that crosses N, then used by loads', async () => {
      const s = await getStore();
      const decider = summing({ every: 3 });
      const streamId = `sum-${target.name}-every`;
      const taken: boolean[] = [];
      for (let n = 1; n <= 7; n++) taken.push((await handleCommand(s, streamId, add(n), decider)).snapshotTaken);
      expect(taken).toEqual([false, false, true, false, false, true, false]);
      const snapshot = await s.loadSnapshot(streamId, 'sum');
      expect(snapshot).toMatchObject({ streamVersion: 6, snapshotVersion: 1, state: { total: 21, count: 6 } });
      const loaded = await loadAggregate(s, streamId, decider);
      expect(loaded).toMatchObject({ state: { total: 28, count: 7 }, streamVersion: 7, snapshotVersion: 6, eventsFolded: 1 });
    });

    it('the load really starts from the snapshot: a doctored snapshot shows through, a stale version does not', async () => {
      const s = await getStore();
      const streamId = `sum-${target.name}-doctored`;
      const v1 = summing({ every: 100 });
      for (let n = 1; n <= 4; n++) await handleCommand(s, streamId, add(n), v1);
      // Pretend a snapshot at version 3 said total 1000 (a real one says 6).
      await s.saveSnapshot({
        streamId,
        name: 'sum',
        streamVersion: 3,
        snapshotVersion: 1,
        state: { total: 1000, count: 3 },
        takenAt: new Date().toISOString(),
      });
      expect((await loadAggregate(s, streamId, v1)).state).toEqual({ total: 1004, count: 4 });
      expect((await loadAggregate(s, streamId, v1, { useSnapshot: false })).state).toEqual({ total: 10, count: 4 });
      // The decider's snapshot version moved on (its state changed shape): the old snapshot is ignored…
      const v2 = summing({ every: 2, version: 2 });
      const rebuilt = await loadAggregate(s, streamId, v2);
      expect(rebuilt).toMatchObject({ state: { total: 10, count: 4 }, snapshotVersion: 0, eventsFolded: 4 });
      // …and replaced by the next command with one at the new version.
      const next = await handleCommand(s, streamId, add(5), v2);
      expect(next.snapshotTaken).toBe(true);
      expect(await s.loadSnapshot(streamId, 'sum')).toMatchObject({ streamVersion: 5, snapshotVersion: 2, state: { total: 15, count: 5 } });
    });

    it('a predicate decides, toJSON/fromJSON carry non-JSON state, asOf.version uses only older snapshots', async () => {
      const s = await getStore();
      const streamId = `set-${target.name}-when`;
      const seen: Decider<Set<number>, Cmd, Ev> = {
        name: 'seen',
        initialState: () => new Set(),
        evolve: (set, e) => new Set([...set, e.data.n]),
        decide: (c) => ({ type: 'Added', data: { n: c.data.n } }),
        snapshots: {
          when: ({ newEvents }) => newEvents.some((e) => e.data.n === 0),
          toJSON: (set) => [...set],
          fromJSON: (json) => new Set(json as number[]),
        },
      };
      for (const n of [5, 0, 7]) await handleCommand(s, streamId, add(n), seen);
      expect(await s.loadSnapshot(streamId, 'seen')).toMatchObject({ streamVersion: 2, state: [5, 0] });
      const now = await loadAggregate(s, streamId, seen);
      expect([...now.state]).toEqual([5, 0, 7]);
      expect(now.snapshotVersion).toBe(2);
      const early = await loadAggregate(s, streamId, seen, { asOf: { version: 1 } });
      expect([...early.state]).toEqual([5]);
      expect(early.snapshotVersion).toBe(0);
    });

    it('takeSnapshot on demand; a decider without a name cannot snapshot', async () => {
      const s = await getStore();
      const streamId = `sum-${target.name}-manual`;
      await s.append(
        streamId,
        [1, 2, 3].map((n) => ({ type: 'Added', data: { n } })),
      );
      const snapshot = await takeSnapshot(s, streamId, summing({ every: 1000 }));
      expect(snapshot).toMatchObject({ streamVersion: 3, state: { total: 6, count: 3 } });
      const { name: _, ...nameless } = summing({ every: 1 });
      await expect(handleCommand(s, `${streamId}-2`, add(1), nameless)).rejects.toThrow(InvalidArgumentError);
      await expect(handleCommand(s, `${streamId}-3`, add(1), summing({ every: 0 }))).rejects.toThrow(/snapshots.every/);
      await expect(loadAggregate(s, streamId, summing({ every: 5, version: 1.5 }))).rejects.toThrow(/snapshots.version/);
      expect(await s.streamVersion(`${streamId}-3`)).toBe(0);
    });

    it('property: with snapshots every k, loads equal the full fold', async () => {
      const s = await getStore();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4 }),
          fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 10 }),
          async (k, ns) => {
            const streamId = `sum-${target.name}-prop-${run++}`;
            const decider = summing({ every: k });
            for (const n of ns) await handleCommand(s, streamId, add(n), decider);
            const full = (await collect(s.read(streamId))).reduce((acc, e) => acc + (e.data as { n: number }).n, 0);
            const loaded = await loadAggregate(s, streamId, decider);
            expect(loaded.state).toEqual({ total: full, count: ns.length });
            // A snapshot is due once k events pile up, so a load never folds k or more.
            expect(loaded.eventsFolded).toBeLessThan(k);
            expect(loaded.snapshotVersion + loaded.eventsFolded).toBe(ns.length);
          },
        ),
        { numRuns: target.name === 'memory' ? 40 : 8 },
      );
    });
  });
}
