/**
 * Category and event-type reads from $all (docs/store.md, categories), run by the shared contract
 * suite: which streams a category holds, several types merged in position order across pages,
 * the same answers from readAll and subscribe, and bad filters refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EventStore, InvalidArgumentError, type NewEvent, type RecordedEvent } from '../../src/index.js';
import { collect, take } from '../helpers/collect.js';

const ev = (type: string, data: NewEvent['data'] = {}): NewEvent => ({ type, data });
const where = (events: RecordedEvent[]) => events.map((e) => `${e.streamId}:${e.type}`);

/** The rule, spelled independently of the code under test: a category is the id before its first '-'. */
const inCategory = (streamId: string, category: string) => streamId.includes('-') && streamId.split('-')[0] === category;

export function describeCategories(open: () => Promise<EventStore>, propertyRuns: number): void {
  describe('category and event-type reads', () => {
    it("reads a category: the streams whose id is '<category>-…', and no other", async () => {
      const store = await open();
      for (const stream of ['user-1', 'user', 'users-1', 'userx-1', 'user-2-b', 'order-1', 'user_1-a', 'user.1-a', '-user', 'user-1']) {
        await store.append(stream, [ev('Seen', { stream })]);
      }
      expect(where(await collect(store.readAll({ category: 'user' })))).toEqual(['user-1:Seen', 'user-2-b:Seen', 'user-1:Seen']);
      expect(where(await collect(store.readAll({ category: 'users' })))).toEqual(['users-1:Seen']);
      expect(where(await collect(store.readAll({ category: 'user_1' })))).toEqual(['user_1-a:Seen']);
      expect(where(await collect(store.readAll({ category: 'user.1' })))).toEqual(['user.1-a:Seen']);
      expect(await collect(store.readAll({ category: 'nobody' }))).toEqual([]);
      // With the other filters: all of them apply.
      expect(where(await collect(store.readAll({ category: 'user', streamPrefix: 'user-2' })))).toEqual(['user-2-b:Seen']);
      expect(await collect(store.readAll({ category: 'user', types: ['Other'] }))).toEqual([]);
    });

    it('pages a category and several types in position order, with from and limit', async () => {
      const store = await open();
      // Three categories and three types of different densities, interleaved over 3,000 events.
      for (let round = 0; round < 6; round++) {
        for (const category of ['cart', 'order', 'ship']) {
          const events = Array.from({ length: 50 + round * 10 }, (_, i) => ev(i % 10 === 0 ? 'Rare' : i % 3 ? 'Often' : 'Some', { i }));
          await store.append(`${category}-${round % 4}`, events);
        }
      }
      const all = await collect(store.readAll());
      const cases: Array<{ category?: string; types?: string[] }> = [
        { category: 'order' },
        { types: ['Rare'] },
        { types: ['Rare', 'Often'] },
        { types: ['Often', 'Some', 'Rare', 'Missing'] },
        { category: 'ship', types: ['Some', 'Rare'] },
      ];
      for (const filter of cases) {
        const expected = all.filter(
          (e) => (!filter.category || inCategory(e.streamId, filter.category)) && (!filter.types || filter.types.includes(e.type)),
        );
        const got = await collect(store.readAll(filter));
        expect(
          got.map((e) => e.position),
          JSON.stringify(filter),
        ).toEqual(expected.map((e) => e.position));
        expect(got).toEqual(expected);
        const middle = expected[Math.floor(expected.length / 3)] as RecordedEvent;
        const window = await collect(store.readAll({ ...filter, from: middle.position, limit: 555 }));
        expect(window.map((e) => e.position)).toEqual(
          expected
            .filter((e) => e.position > middle.position)
            .slice(0, 555)
            .map((e) => e.position),
        );
      }
    });

    it('answers every filter like the whole log filtered by the rule (property)', async () => {
      const store = await open();
      const streams = ['a-1', 'a-2', 'a', 'ab-1', 'b-1', 'b-a-1', 'c-1'];
      const types = ['X', 'Y', 'Z'];
      const log = fc.sample(fc.tuple(fc.constantFrom(...streams), fc.array(fc.constantFrom(...types), { minLength: 1, maxLength: 4 })), {
        numRuns: 60,
        seed: 13,
      });
      for (const [stream, batch] of log)
        await store.append(
          stream,
          batch.map((type) => ev(type)),
        );
      const all = await collect(store.readAll());
      await fc.assert(
        fc.asyncProperty(
          fc.record(
            {
              category: fc.constantFrom('a', 'ab', 'b', 'c', 'd'),
              types: fc.subarray(types, { minLength: 1 }),
              streamPrefix: fc.constantFrom('a-', 'b-a', 'ab'),
              from: fc
                .bigInt({ min: 0n, max: BigInt(all.length) })
                .map((i) => (i === 0n ? 0n : (all[Number(i) - 1] as RecordedEvent).position)),
              limit: fc.integer({ min: 1, max: 40 }),
            },
            { requiredKeys: [] },
          ),
          async (filter) => {
            const expected = all
              .filter(
                (e) =>
                  e.position > (filter.from ?? 0n) &&
                  (!filter.category || inCategory(e.streamId, filter.category)) &&
                  (!filter.types || filter.types.includes(e.type)) &&
                  (!filter.streamPrefix || e.streamId.startsWith(filter.streamPrefix)),
              )
              .slice(0, filter.limit ?? all.length);
            expect((await collect(store.readAll(filter))).map((e) => e.position)).toEqual(expected.map((e) => e.position));
          },
        ),
        { numRuns: propertyRuns },
      );
    });

    it('subscribes to a category and to types: catch-up, then live', async () => {
      const store = await open();
      await store.append('user-1', [ev('Created'), ev('Renamed')]);
      await store.append('order-1', [ev('Created')]);
      const users = take(store.subscribe({ category: 'user' }), 4);
      const created = take(store.subscribe({ category: 'user', types: ['Created'] }), 2);
      const renamedOrPlaced = take(store.subscribe({ types: ['Renamed', 'Placed'] }), 3);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await store.append('users-1', [ev('Created')]);
      await store.append('order-1', [ev('Placed')]);
      await store.append('user-2', [ev('Created'), ev('Renamed')]);
      expect(where(await users)).toEqual(['user-1:Created', 'user-1:Renamed', 'user-2:Created', 'user-2:Renamed']);
      expect(where(await created)).toEqual(['user-1:Created', 'user-2:Created']);
      expect(where(await renamedOrPlaced)).toEqual(['user-1:Renamed', 'order-1:Placed', 'user-2:Renamed']);
    });

    it('refuses a category that is empty, holds a dash or is not a string', async () => {
      const store = await open();
      await store.append('user-1', [ev('Created')]);
      for (const category of ['', 'user-', 'user-1', 'a b', '$all', 'x'.repeat(201), 42, null]) {
        const options = { category: category as string };
        const error = await collect(store.readAll(options)).catch((e: unknown) => e);
        expect(error, JSON.stringify(category)).toBeInstanceOf(InvalidArgumentError);
        expect((error as InvalidArgumentError).message).toContain('category');
        await expect(take(store.subscribe(options), 1, 2000)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
    });
  });
}
