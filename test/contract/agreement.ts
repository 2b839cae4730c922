/**
 * Rules every backend must agree on (issue 10, items 5 and 8), run by the shared contract suite:
 * event ids are canonical lower-case UUIDs, and a position beyond the head is an error.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  IdempotencyConflictError,
  InvalidEventError,
  type NewEvent,
  PositionBeyondHeadError,
  type RecordedEvent,
} from '../../src/index.js';
import { collect, take } from '../helpers/collect.js';
import { restoreTo } from '../helpers/restore.js';

const ev = (type: string, data: NewEvent['data'] = {}, extra: Partial<NewEvent> = {}): NewEvent => ({ type, data, ...extra });

/** The first result of an iterator, or a timeout error. */
async function nextWithin(iterator: AsyncIterator<RecordedEvent>, ms: number): Promise<IteratorResult<RecordedEvent>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([iterator.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeAgreement(backend: string, open: () => Promise<EventStore>): void {
  describe('event ids are canonical: lower-case UUIDs, compared case-insensitively', () => {
    it('stores and returns an upper-case id in lower case', async () => {
      const store = await open();
      const id = randomUUID();
      const { position } = await store.append('ids-1', [ev('A', {}, { id: id.toUpperCase() })]);
      expect((await collect(store.read('ids-1')))[0]?.id).toBe(id);
      expect((await collect(store.readAll()))[0]?.id).toBe(id);
      expect((await take(store.subscribe({ from: position - 1n }), 1))[0]?.id).toBe(id);
    });

    it('answers an exact retry that changes the letter case of its ids as an idempotent no-op', async () => {
      const store = await open();
      const lower = [ev('A', { n: 1 }, { id: randomUUID() }), ev('B', { n: 2 }, { id: randomUUID() })];
      const upper = lower.map((e) => ({ ...e, id: e.id?.toUpperCase() }));
      const first = await store.append('ids-2', upper, { expectedVersion: 'no_stream' });
      expect(await store.append('ids-2', lower, { expectedVersion: 'no_stream' })).toEqual(first);
      expect(await store.append('ids-2', upper, { expectedVersion: 'no_stream' })).toEqual(first);
      expect(await store.append('ids-2', upper)).toEqual(first);
      const mixed = [lower[0] as NewEvent, upper[1] as NewEvent];
      expect(await store.append('ids-2', mixed)).toEqual(first);
      expect((await store.stats()).events).toBe(2);
      expect((await collect(store.read('ids-2'))).map((e) => e.id)).toEqual(lower.map((e) => e.id));
    });

    it('treats ids differing only in letter case as the same id', async () => {
      const store = await open();
      const id = randomUUID();
      await expect(store.append('ids-3', [ev('A', {}, { id }), ev('A', {}, { id: id.toUpperCase() })])).rejects.toBeInstanceOf(
        InvalidEventError,
      );
      await store.append('ids-3', [ev('A', { v: 1 }, { id })]);
      await expect(store.append('ids-4', [ev('A', { v: 1 }, { id: id.toUpperCase() })])).rejects.toBeInstanceOf(IdempotencyConflictError);
      await expect(store.append('ids-3', [ev('A', { v: 2 }, { id: id.toUpperCase() })])).rejects.toBeInstanceOf(IdempotencyConflictError);
      expect((await store.stats()).events).toBe(1);
    });
  });

  describe('a position beyond the head is PositionBeyondHead, never a silent skip', () => {
    it('readAll from beyond the head throws; from the head it is empty', async () => {
      const store = await open();
      await expect(collect(store.readAll({ from: 1n }))).rejects.toBeInstanceOf(PositionBeyondHeadError);
      const { position: head } = await store.append('p-1', [ev('A'), ev('B')]);
      expect(await collect(store.readAll({ from: head }))).toEqual([]);
      expect(await collect(store.readAll({ from: head, types: ['Other'] }))).toEqual([]);
      const error = await collect(store.readAll({ from: head + 5n, types: ['A'], streamPrefix: 'p-' })).catch((e) => e);
      expect(error).toBeInstanceOf(PositionBeyondHeadError);
      expect(error.details).toEqual({ position: (head + 5n).toString(), head: head.toString() });
      expect(await collect(store.readAll({ from: head - 1n }))).toHaveLength(1);
    });

    it('subscribe from beyond the head throws at once; from the head it goes live', async () => {
      const store = await open();
      const { position: head } = await store.append('p-2', [ev('A')]);
      const beyond = store.subscribe({ from: head + 1n })[Symbol.asyncIterator]();
      await expect(nextWithin(beyond, 10_000)).rejects.toBeInstanceOf(PositionBeyondHeadError);
      await expect(
        nextWithin(store.subscribe({ from: head + 3n, types: ['Nope'] })[Symbol.asyncIterator](), 10_000),
      ).rejects.toBeInstanceOf(PositionBeyondHeadError);
      const live = take(store.subscribe({ from: head }), 1);
      await store.append('p-2', [ev('B')]);
      expect((await live).map((e) => e.type)).toEqual(['B']);
    });

    // Memory cannot be restored; on NATS the check is made when a read or subscription starts (docs/nats.md).
    it.skipIf(backend === 'memory' || backend === 'nats')(
      'a live subscription fails when the store is restored behind it, instead of skipping',
      async () => {
        const store = await open();
        await store.append('p-3', [ev('A'), ev('B'), ev('C'), ev('D')]);
        const iterator = store.subscribe()[Symbol.asyncIterator]();
        for (let i = 0; i < 4; i++) await nextWithin(iterator, 10_000);
        await restoreTo(store, 2n);
        // Written after the restore at positions the subscriber believes it has seen.
        await store.append('p-3-after', [ev('AfterRestore')]);
        const error = await nextWithin(iterator, 10_000).catch((e) => e);
        expect(error).toBeInstanceOf(PositionBeyondHeadError);
        expect(error.details).toMatchObject({ position: '4' });
      },
    );
  });
}
