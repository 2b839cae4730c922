/**
 * Contract: appends one store instance is asked for without awaiting each other are applied in
 * call order (issue 10 item 4), and many concurrent appends to one hot stream, which a coalescing
 * backend puts into one commit, get versions in call order with each expected version checked
 * against the appends before it (issue 19). Called from describeContract.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EventStore, type ExpectedVersion, type NewEvent, WrongExpectedVersionError } from '../../src/index.js';
import { collect } from '../helpers/collect.js';

/** The rule every backend applies, as the model's oracle. */
const versionMatches = (expected: ExpectedVersion, actual: number): boolean =>
  expected === 'any' || (expected === 'no_stream' ? actual === 0 : expected === 'exists' ? actual > 0 : expected === actual);

const event = (type: string, data: NewEvent['data'] = {}): NewEvent => ({ type, data, id: randomUUID() });

export function describeCallOrder(open: () => Promise<EventStore>, propertyRuns: number): void {
  describe('call order of appends not awaited in between', () => {
    it('applies pipelined pairs (no_stream, then expected version 1) in call order', async () => {
      const store = await open();
      // Rounds of pairs in flight at once, as a busy caller would issue them.
      for (let round = 0; round < 10; round++) {
        const pairs = Array.from({ length: 10 }, (_, i) => {
          const stream = `pair-${round}-${i}`;
          return [
            store.append(stream, [event('First')], { expectedVersion: 'no_stream' }),
            store.append(stream, [event('Second')], { expectedVersion: 1 }),
          ];
        });
        const results = await Promise.allSettled(pairs.flat());
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      }
      for (let i = 0; i < 10; i++) expect((await collect(store.read(`pair-9-${i}`))).map((e) => e.type)).toEqual(['First', 'Second']);
    });

    it('gives appends without expected versions positions in call order, across streams', async () => {
      const store = await open();
      for (let round = 0; round < 10; round++) {
        const calls = Array.from({ length: 20 }, (_, i) => ({ stream: `free-${round}-${i % 3}`, event: event('E', { round, i }) }));
        const results = await Promise.all(calls.map((call) => store.append(call.stream, [call.event])));
        const positions = results.map((r) => r.position);
        expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
        const log = await collect(store.readAll({ streamPrefix: `free-${round}-` }));
        expect(log.map((e) => e.id)).toEqual(calls.map((call) => call.event.id));
      }
    });
  });

  describe('many concurrent appends to one hot stream', () => {
    type Op = { count: number; expected: 'any' | 'no_stream' | 'exists' | 'right' | 'off' };
    const opArb: fc.Arbitrary<Op> = fc.record({
      count: fc.integer({ min: 0, max: 3 }),
      expected: fc.constantFrom<Op['expected']>('any', 'any', 'no_stream', 'exists', 'right', 'right', 'off'),
    });

    it('assigns versions in call order and checks each expected version against the appends before it', async () => {
      const store = await open();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 2 }), async (ops, preexisting) => {
          const stream = `hot-${run++}`;
          if (preexisting)
            await store.append(
              stream,
              Array.from({ length: preexisting }, () => event('Before')),
            );
          // The model: the appends applied one after the other, in call order.
          let version = preexisting;
          const calls = ops.map((op) => {
            const expected: ExpectedVersion =
              op.expected === 'right' ? version : op.expected === 'off' ? version + 1 + (version % 2) : op.expected;
            const events = Array.from({ length: op.count }, () => event('E'));
            const fits = versionMatches(expected, version);
            const before = version;
            if (fits) version += events.length;
            return { expected, events, fits, before, after: version };
          });
          const outcomes = await Promise.allSettled(calls.map((c) => store.append(stream, c.events, { expectedVersion: c.expected })));
          let lastPosition = 0n;
          for (const [i, call] of calls.entries()) {
            const outcome = outcomes[i] as PromiseSettledResult<{ streamVersion: number; position: bigint }>;
            if (!call.fits) {
              expect(outcome.status).toBe('rejected');
              const reason = (outcome as PromiseRejectedResult).reason;
              expect(reason).toBeInstanceOf(WrongExpectedVersionError);
              expect(reason).toMatchObject({ expected: call.expected, actual: call.before });
              continue;
            }
            expect(outcome.status).toBe('fulfilled');
            const { streamVersion, position } = (outcome as PromiseFulfilledResult<{ streamVersion: number; position: bigint }>).value;
            expect(streamVersion).toBe(call.after);
            if (call.events.length) {
              expect(position > lastPosition).toBe(true);
              lastPosition = position;
            }
          }
          const stored = await collect(store.read(stream));
          expect(stored.slice(preexisting).map((e) => e.id)).toEqual(calls.filter((c) => c.fits).flatMap((c) => c.events.map((e) => e.id)));
          expect(stored.map((e) => e.streamVersion)).toEqual(stored.map((_, i) => i + 1));
        }),
        { numRuns: propertyRuns },
      );
    }, 120_000);

    it('answers an exact retry queued right behind its original as the original', async () => {
      const store = await open();
      const first = [event('A'), event('B')];
      const [original, retry, next] = await Promise.all([
        store.append('retry', first, { expectedVersion: 'no_stream' }),
        store.append('retry', first, { expectedVersion: 'no_stream' }),
        store.append('retry', [event('C')], { expectedVersion: 2 }),
      ]);
      expect(retry).toEqual(original);
      expect(next.streamVersion).toBe(3);
      expect((await collect(store.read('retry'))).map((e) => e.type)).toEqual(['A', 'B', 'C']);
    });
  });
}
