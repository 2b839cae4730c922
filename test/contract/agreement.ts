/**
 * Rules every backend must agree on (issue 10, items 5 and 8), run by the shared contract suite:
 * event ids are canonical lower-case UUIDs, and a position beyond the head is an error.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type EventStore, IdempotencyConflictError, InvalidEventError, type NewEvent } from '../../src/index.js';
import { collect, take } from '../helpers/collect.js';

const ev = (type: string, data: NewEvent['data'] = {}, extra: Partial<NewEvent> = {}): NewEvent => ({ type, data, ...extra });

export function describeAgreement(open: () => Promise<EventStore>): void {
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
}
