/**
 * Contract (issue 10 item 7): recordedAt never goes backwards along positions, so a load as of a
 * recorded time folds a prefix of the stream (never version 5 without version 4). Called from
 * describeContract.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { type EventStore, type Fold, loadAggregate, type NewEvent, type RecordedEvent } from '../../src/index.js';
import { collect } from '../helpers/collect.js';

const event = (i: number): NewEvent => ({ type: 'E', data: { i }, id: randomUUID() });

/** Folds the stream versions it is given, in order. */
const versions: Fold<number[], NewEvent> = { name: 'versions', initialState: () => [], evolve: (seen, e) => [...seen, e.streamVersion] };

function expectNeverBackwards(log: RecordedEvent[]): void {
  for (let i = 1; i < log.length; i++) {
    const [before, after] = [log[i - 1] as RecordedEvent, log[i] as RecordedEvent];
    if (Date.parse(after.recordedAt) < Date.parse(before.recordedAt))
      expect.fail(`position ${after.position} recorded at ${after.recordedAt}, before position ${before.position} (${before.recordedAt})`);
  }
}

export function describeRecordedAt(open: () => Promise<EventStore>, propertyRuns: number): void {
  describe('recordedAt along positions', () => {
    it('never goes backwards, and a load as of any recorded time folds a prefix of the stream', async () => {
      const store = await open();
      let run = 0;
      const roundArb = fc.array(fc.record({ stream: fc.constantFrom('a', 'b', 'c'), count: fc.integer({ min: 1, max: 3 }) }), {
        minLength: 1,
        maxLength: 12,
      });
      await fc.assert(
        fc.asyncProperty(fc.array(roundArb, { minLength: 1, maxLength: 5 }), async (rounds) => {
          const prefix = `t${run++}-`;
          for (const round of rounds) {
            // Concurrent appends: a coalescing backend commits them together or in a few commits.
            await Promise.all(
              round.map((op, i) =>
                store.append(
                  prefix + op.stream,
                  Array.from({ length: op.count }, (_, k) => event(i * 10 + k)),
                ),
              ),
            );
          }
          const log = await collect(store.readAll({ streamPrefix: prefix }));
          expectNeverBackwards(log);
          for (const stream of new Set(log.map((e) => e.streamId))) {
            const events = log.filter((e) => e.streamId === stream);
            for (const at of new Set(events.map((e) => e.recordedAt))) {
              const known = events.filter((e) => Date.parse(e.recordedAt) <= Date.parse(at)).length;
              const loaded = await loadAggregate(store, stream, versions, { asOf: { recordedAt: at } });
              expect(loaded.state).toEqual(Array.from({ length: known }, (_, i) => i + 1));
            }
          }
        }),
        { numRuns: propertyRuns },
      );
    }, 120_000);

    it('does not go backwards when the wall clock steps back between two appends', async () => {
      const store = await open();
      const first = await store.append('clock', [event(1)]);
      // An NTP correction: the process clock jumps an hour back (backends whose clock is the
      // database server's are unaffected by this one, and must hold the rule all the same).
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3_600_000 });
      try {
        await store.append('clock', [event(2)]);
        await store.append('other', [event(3)]);
      } finally {
        vi.useRealTimers();
      }
      const log = await collect(store.readAll({ from: first.position - 1n }));
      expect(log).toHaveLength(3);
      expectNeverBackwards(log);
      const asOfFirst = await loadAggregate(store, 'clock', versions, { asOf: { recordedAt: (log[0] as RecordedEvent).recordedAt } });
      expect(asOfFirst.state).toEqual(log[1]?.recordedAt === log[0]?.recordedAt ? [1, 2] : [1]);
    });
  });
}
