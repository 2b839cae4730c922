/**
 * The shared contract suite (docs/store.md, the guarantees). Every backend runs all of it through a factory
 * that hands out fresh, empty stores. Each guarantee has its own block below.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AppendTooLargeError,
  type EventStore,
  EventTooLargeError,
  type ExpectedVersion,
  IdempotencyConflictError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidStreamIdError,
  LoglineError,
  type NewEvent,
  type RecordedEvent,
  StoreClosedError,
  type StoreLimits,
  WrongExpectedVersionError,
} from '../../src/index.js';
import { collect, take } from '../helpers/collect.js';
import { describeAgreement } from './agreement.js';
import { describeCallOrder } from './call-order.js';
import { describeCategories } from './categories.js';
import { closeDrainsContract } from './close-drains.js';
import { describePersonalData } from './personal-data.js';
import { describeRecordedAt } from './recorded-at.js';
import { describeRestoreStart } from './restore-start.js';
import { describeRetention } from './retention.js';
import { describeSubjectKeys } from './subject-keys.js';

export interface ContractTarget {
  /** A fresh, empty store (`masterKey` wraps its subject keys). */
  open(options?: StoreOptions): Promise<EventStore>;
  /** How many fast-check runs the heavier properties get (bounded to keep the suite fast). */
  propertyRuns: number;
}

type StoreOptions = { limits?: Partial<StoreLimits>; masterKey?: Uint8Array };

const ev = (type: string, data: NewEvent['data'] = {}, extra: Partial<NewEvent> = {}): NewEvent => ({ type, data, ...extra });
const eventCount = async (store: EventStore) => (await store.stats()).events;

export function describeContract(name: string, target: ContractTarget): void {
  describe(`contract: ${name}`, () => {
    const opened: EventStore[] = [];
    const open = async (options?: StoreOptions) => {
      const store = await target.open(options);
      opened.push(store);
      return store;
    };
    afterAll(async () => {
      for (const store of opened) await store.close().catch(() => {});
    });

    describeAgreement(name, open);
    describePersonalData(name, open);
    describeSubjectKeys(name, open);
    describeRetention(open, Math.max(5, Math.floor(target.propertyRuns / 2)));
    describeRestoreStart(open);

    describe('append and read', () => {
      it('records events with versions, positions, ids and times', async () => {
        const store = await open();
        const before = new Date().toISOString();
        const result = await store.append('user-1', [ev('UserCreated', { name: 'Homer' }), ev('UserRenamed', { name: 'Homer J' })]);
        expect(result.streamVersion).toBe(2);
        expect(typeof result.position).toBe('bigint');
        const events = await collect(store.read('user-1'));
        expect(events.map((e) => [e.type, e.streamVersion, e.streamId])).toEqual([
          ['UserCreated', 1, 'user-1'],
          ['UserRenamed', 2, 'user-1'],
        ]);
        expect(events[0]?.data).toEqual({ name: 'Homer' });
        expect(events[0]?.metadata).toEqual({});
        expect(events[1]?.position).toBe(result.position);
        expect((events[0] as RecordedEvent).position < (events[1] as RecordedEvent).position).toBe(true);
        for (const e of events) {
          expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
          expect(e.recordedAt >= before.slice(0, 19)).toBe(true);
          expect(e.occurredAt).toBe(e.recordedAt);
          expect(Number.isNaN(Date.parse(e.recordedAt))).toBe(false);
        }
      });

      it('keeps ids, metadata, occurredAt and every kind of JSON value', async () => {
        const store = await open();
        const id = randomUUID();
        const data = { s: 'ü 🙂 "q"', n: -1.5e10, i: 42, b: false, z: null, a: [1, 'x', { deep: [[]] }], o: {} };
        await store.append('doc-1', [
          ev('Stored', data, { id, metadata: { correlationId: 'c-1', userId: 7 }, occurredAt: '2020-01-28T10:00:00+02:00' }),
          ev('Scalar', 'just a string'),
          ev('Null', null),
        ]);
        const [first, second, third] = await collect(store.read('doc-1'));
        expect(first).toMatchObject({ id, data, metadata: { correlationId: 'c-1', userId: 7 }, occurredAt: '2020-01-28T08:00:00.000Z' });
        expect(second?.data).toBe('just a string');
        expect(third?.data).toBeNull();
      });

      it('returns nothing for an unknown stream and version 0', async () => {
        const store = await open();
        expect(await collect(store.read('nobody'))).toEqual([]);
        expect(await store.streamVersion('nobody')).toBe(0);
      });

      it('reads from a version, with a limit, and backward', async () => {
        const store = await open();
        await store.append(
          's',
          Array.from({ length: 10 }, (_, i) => ev('E', { i })),
        );
        const versions = async (opts: Parameters<EventStore['read']>[1]) =>
          (await collect(store.read('s', opts))).map((e) => e.streamVersion);
        expect(await versions({ from: 4, limit: 3 })).toEqual([4, 5, 6]);
        expect(await versions({ direction: 'backward' })).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
        expect(await versions({ direction: 'backward', from: 3 })).toEqual([3, 2, 1]);
        expect(await versions({ direction: 'backward', limit: 2 })).toEqual([10, 9]);
        expect(await versions({ from: 11 })).toEqual([]);
        expect(await versions({ direction: 'backward', from: 50, limit: 1 })).toEqual([10]);
      });

      it('pages through long streams in both directions', async () => {
        const store = await open();
        for (let batch = 0; batch < 3; batch++) {
          await store.append(
            'long',
            Array.from({ length: 700 }, (_, i) => ev('E', { n: batch * 700 + i })),
          );
        }
        const forward = await collect(store.read('long'));
        expect(forward.map((e) => e.streamVersion)).toEqual(Array.from({ length: 2100 }, (_, i) => i + 1));
        const backward = await collect(store.read('long', { direction: 'backward' }));
        expect(backward.map((e) => e.streamVersion)).toEqual(Array.from({ length: 2100 }, (_, i) => 2100 - i));
        const all = await collect(store.readAll());
        expect(all).toHaveLength(2100);
      });

      it('accepts an empty append as a version check that stores nothing', async () => {
        const store = await open();
        await store.append('e', [ev('A')]);
        expect((await store.append('e', [], { expectedVersion: 1 })).streamVersion).toBe(1);
        await expect(store.append('e', [], { expectedVersion: 5 })).rejects.toBeInstanceOf(WrongExpectedVersionError);
        expect(await eventCount(store)).toBe(1);
      });

      it('lists streams, counts, head position', async () => {
        const store = await open();
        expect(await store.headPosition()).toBe(0n);
        await store.append('order-2', [ev('A'), ev('B')]);
        await store.append('order-1', [ev('A')]);
        const last = await store.append('user-1', [ev('A')]);
        expect(await store.headPosition()).toBe(last.position);
        expect(await store.stats()).toEqual({ events: 4, streams: 3, headPosition: last.position });
        const streams = await store.listStreams({ prefix: 'order-' });
        expect(streams.map((s) => [s.streamId, s.version])).toEqual([
          ['order-1', 1],
          ['order-2', 2],
        ]);
        expect((await store.listStreams({ after: 'order-1', limit: 1 })).map((s) => s.streamId)).toEqual(['order-2']);
      });
    });

    describe('guarantee 2: optimistic concurrency', () => {
      it('checks no_stream, exists, any and exact versions', async () => {
        const store = await open();
        await expect(store.append('acc', [ev('A')], { expectedVersion: 'exists' })).rejects.toMatchObject({
          code: 'WrongExpectedVersion',
          stream: 'acc',
          expected: 'exists',
          actual: 0,
        });
        await store.append('acc', [ev('A')], { expectedVersion: 'no_stream' });
        await expect(store.append('acc', [ev('B')], { expectedVersion: 'no_stream' })).rejects.toBeInstanceOf(WrongExpectedVersionError);
        await store.append('acc', [ev('B')], { expectedVersion: 'exists' });
        await store.append('acc', [ev('C')], { expectedVersion: 2 });
        const error = await store.append('acc', [ev('D'), ev('E')], { expectedVersion: 2 }).catch((e) => e);
        expect(error).toBeInstanceOf(WrongExpectedVersionError);
        expect(error).toMatchObject({ stream: 'acc', expected: 2, actual: 3 });
        expect(error.message).toContain('expected version 2');
        expect(error.toJSON()).toMatchObject({ error: 'WrongExpectedVersion', expected: 2, actual: 3 });
        await store.append('acc', [ev('D')], { expectedVersion: 'any' });
        expect((await collect(store.read('acc'))).map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
      });

      it('lets exactly one of many concurrent appends with the same expected version win', async () => {
        const store = await open();
        await store.append('race', [ev('Opened')]);
        const attempts = await Promise.allSettled(
          Array.from({ length: 24 }, (_, i) => store.append('race', [ev('Won', { i }), ev('Won2', { i })], { expectedVersion: 1 })),
        );
        const winners = attempts.filter((a) => a.status === 'fulfilled');
        expect(winners).toHaveLength(1);
        for (const a of attempts) if (a.status === 'rejected') expect(a.reason).toBeInstanceOf(WrongExpectedVersionError);
        expect(await store.streamVersion('race')).toBe(3);
        const second = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.append('fresh', [ev('Created')], { expectedVersion: 'no_stream' })),
        );
        expect(second.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
        expect(await eventCount(store)).toBe(4);
      });
    });

    describe('guarantees 1 and 3: atomic and idempotent', () => {
      it('stores nothing of an append with one bad event', async () => {
        const store = await open();
        await store.append('a', [ev('First')]);
        await expect(
          store.append('a', [ev('Ok'), ev('Ok'), { type: 'Bad', data: undefined } as unknown as NewEvent]),
        ).rejects.toBeInstanceOf(InvalidEventError);
        expect(await eventCount(store)).toBe(1);
        expect(await store.streamVersion('a')).toBe(1);
      });

      it('treats a retry with the same ids as the original append', async () => {
        const store = await open();
        await store.append('pay', [ev('Started')]);
        const batch = [ev('Paid', { amount: 10 }, { id: randomUUID() }), ev('Receipted', {}, { id: randomUUID() })];
        const first = await store.append('pay', batch, { expectedVersion: 1 });
        await store.append('pay', [ev('Later')]);
        const again = await store.append('pay', batch, { expectedVersion: 1 });
        const againAny = await store.append('pay', batch);
        expect(again).toEqual(first);
        expect(againAny).toEqual(first);
        expect(await eventCount(store)).toBe(4);
      });

      it('rejects a reused id with other content, in another stream, or mixed with new ids', async () => {
        const store = await open();
        const id = randomUUID();
        await store.append('x', [ev('A', { v: 1 }, { id })]);
        await expect(store.append('x', [ev('A', { v: 2 }, { id })])).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(store.append('y', [ev('A', { v: 1 }, { id })])).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(store.append('x', [ev('A', { v: 1 }, { id }), ev('New')])).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(store.append('x', [ev('New'), ev('A', { v: 1 }, { id })])).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(store.append('x', [ev('A', { v: 1 }, { id })], { expectedVersion: 'no_stream' })).resolves.toMatchObject({
          streamVersion: 1,
        });
        await expect(store.append('x', [ev('A', { v: 1 }, { id })], { expectedVersion: 5 })).rejects.toBeInstanceOf(LoglineError);
        expect(await eventCount(store)).toBe(1);
        expect(await store.streamVersion('y')).toBe(0);
      });

      it('rejects the same id twice in one append', async () => {
        const store = await open();
        const id = randomUUID();
        await expect(store.append('d', [ev('A', {}, { id }), ev('A', {}, { id })])).rejects.toBeInstanceOf(InvalidEventError);
        expect(await eventCount(store)).toBe(0);
      });
    });

    describe('bad input: a typed error and nothing stored', () => {
      const badStreams: unknown[] = [
        '',
        'a'.repeat(201),
        '$all',
        '$system',
        'has space',
        'slash/y',
        'ünïcode',
        'tab\t',
        'new\nline',
        42,
        null,
        undefined,
      ];
      it.each(badStreams.map((s) => [JSON.stringify(s) ?? 'undefined', s]))('rejects stream id %s', async (_label, stream) => {
        const store = await open();
        const error = await store.append(stream as string, [ev('A')]).catch((e) => e);
        expect(error).toBeInstanceOf(InvalidStreamIdError);
        expect(error.code).toBe('InvalidStreamId');
        expect(error.message).toMatch(/Expected 1 to 200 characters/);
        await expect(collect(store.read(stream as string))).rejects.toBeInstanceOf(InvalidStreamIdError);
        expect(await eventCount(store)).toBe(0);
      });

      it('accepts every allowed stream id character and 200-character ids', async () => {
        const store = await open();
        for (const stream of ['A-z_0.9:@x', 'a'.repeat(200), 'user@example.com', 'tenant:42:order-7']) {
          await store.append(stream, [ev('A')]);
          expect(await store.streamVersion(stream)).toBe(1);
        }
      });

      const badEvents: Array<[string, unknown]> = [
        ['no type', { data: {} }],
        ['empty type', { type: '', data: {} }],
        ['type with spaces', { type: 'User Created', data: {} }],
        ['no data', { type: 'A' }],
        ['undefined data', { type: 'A', data: undefined }],
        ['a function in data', { type: 'A', data: { f: () => 1 } }],
        ['NaN in data', { type: 'A', data: { n: Number.NaN } }],
        ['Infinity', { type: 'A', data: Number.POSITIVE_INFINITY }],
        ['a bigint', { type: 'A', data: { n: 1n } }],
        ['a Date object', { type: 'A', data: { d: new Date() } }],
        ['an id that is no UUID', { type: 'A', data: {}, id: 'abc' }],
        ['metadata that is an array', { type: 'A', data: {}, metadata: [1] }],
        ['occurredAt that is no date', { type: 'A', data: {}, occurredAt: 'yesterday' }],
        ['an unknown field', { type: 'A', data: {}, streamVersion: 3 }],
        ['not an object', 'A'],
        ['null', null],
      ];
      it.each(badEvents)('rejects an event with %s', async (_label, bad) => {
        const store = await open();
        const error = await store.append('s', [ev('Good'), bad as NewEvent]).catch((e) => e);
        expect(error).toBeInstanceOf(InvalidEventError);
        expect(error.details.index).toBe(1);
        expect(error.message).toMatch(/^Event #1 is invalid: /);
        expect(await eventCount(store)).toBe(0);
      });

      it.each([-1, 1.5, 'foo', null, Number.NaN])('rejects expectedVersion %s', async (expectedVersion) => {
        const store = await open();
        await expect(store.append('s', [ev('A')], { expectedVersion: expectedVersion as ExpectedVersion })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        expect(await eventCount(store)).toBe(0);
      });

      it('rejects events as a non-array', async () => {
        const store = await open();
        await expect(store.append('s', { type: 'A', data: {} } as unknown as NewEvent[])).rejects.toBeInstanceOf(InvalidArgumentError);
      });

      it('rejects bad read options', async () => {
        const store = await open();
        await expect(collect(store.read('s', { limit: 0 }))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(collect(store.read('s', { from: -1 }))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(collect(store.read('s', { direction: 'sideways' as 'forward' }))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(collect(store.readAll({ from: -1n }))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(collect(store.readAll({ from: 5 as unknown as bigint }))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(collect(store.readAll({ limit: 1.5 }))).rejects.toBeInstanceOf(InvalidArgumentError);
      });
    });

    describe('limits', () => {
      it('rejects an event over the size limit, and accepts one just under it', async () => {
        const store = await open();
        const big = 'x'.repeat(1024 * 1024);
        const error = await store.append('s', [ev('Big', { big })]).catch((e) => e);
        expect(error).toBeInstanceOf(EventTooLargeError);
        expect(error.details).toMatchObject({ index: 0, maxBytes: 1024 * 1024 });
        await store.append('s', [ev('Fine', { fine: 'x'.repeat(1024 * 1024 - 1000) })]);
        expect(await eventCount(store)).toBe(1);
      });

      it('rejects an append with too many events or too many bytes', async () => {
        const store = await open();
        const many = Array.from({ length: 10_001 }, () => ev('E'));
        const error = await store.append('s', many).catch((e) => e);
        expect(error).toBeInstanceOf(AppendTooLargeError);
        expect(error.details).toMatchObject({ limit: 'events', actual: 10_001, max: 10_000 });
        const chunk = 'y'.repeat(1000 * 1000);
        await expect(
          store.append(
            's',
            Array.from({ length: 17 }, () => ev('E', chunk)),
          ),
        ).rejects.toMatchObject({
          code: 'AppendTooLarge',
          details: { limit: 'bytes' },
        });
        expect(await eventCount(store)).toBe(0);
        await store.append('s', many.slice(1));
        expect(await store.streamVersion('s')).toBe(10_000);
      });

      it('honours configured limits', async () => {
        const store = await open({ limits: { maxAppendEvents: 3, maxEventBytes: 500 } });
        await expect(store.append('s', [ev('A'), ev('A'), ev('A'), ev('A')])).rejects.toBeInstanceOf(AppendTooLargeError);
        await expect(store.append('s', [ev('A', 'z'.repeat(600))])).rejects.toBeInstanceOf(EventTooLargeError);
        await store.append('s', [ev('A'), ev('A'), ev('A')]);
        expect(await eventCount(store)).toBe(3);
      });
    });

    describe('readAll', () => {
      it('returns the global log in position order, from exclusive, with limits and filters', async () => {
        const store = await open();
        await store.append('user-1', [ev('UserCreated'), ev('UserRenamed')]);
        await store.append('order-1', [ev('OrderPlaced')]);
        await store.append('user-2', [ev('UserCreated')]);
        const all = await collect(store.readAll());
        expect(all.map((e) => `${e.streamId}:${e.type}`)).toEqual([
          'user-1:UserCreated',
          'user-1:UserRenamed',
          'order-1:OrderPlaced',
          'user-2:UserCreated',
        ]);
        const positions = all.map((e) => e.position);
        expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions);
        expect(new Set(positions).size).toBe(4);
        const afterSecond = await collect(store.readAll({ from: positions[1] }));
        expect(afterSecond.map((e) => e.position)).toEqual(positions.slice(2));
        expect((await collect(store.readAll({ limit: 3 }))).length).toBe(3);
        expect((await collect(store.readAll({ types: ['UserCreated'] }))).map((e) => e.streamId)).toEqual(['user-1', 'user-2']);
        expect((await collect(store.readAll({ streamPrefix: 'order-' }))).map((e) => e.type)).toEqual(['OrderPlaced']);
        expect(await collect(store.readAll({ streamPrefix: 'user-', types: ['UserRenamed'] }))).toHaveLength(1);
        expect(await collect(store.readAll({ from: positions[3] }))).toEqual([]);
      });

      it('pages a filtered readAll over more than one page', async () => {
        const store = await open();
        for (let i = 0; i < 4; i++)
          await store.append(
            `mixed-${i}`,
            Array.from({ length: 600 }, (_, j) => ev(j % 2 ? 'Odd' : 'Even')),
          );
        expect(await collect(store.readAll({ types: ['Odd'] }))).toHaveLength(1200);
        expect(await collect(store.readAll({ types: ['Odd'], limit: 555 }))).toHaveLength(555);
      });
    });

    describe('subscribe', () => {
      it('catches up, then delivers live events, in order', async () => {
        const store = await open();
        await store.append('s-1', [ev('A'), ev('B')]);
        const received = take(store.subscribe(), 5);
        await new Promise((r) => setTimeout(r, 50));
        await store.append('s-2', [ev('C')]);
        await store.append('s-1', [ev('D'), ev('E')]);
        const events = await received;
        expect(events.map((e) => e.type)).toEqual(['A', 'B', 'C', 'D', 'E']);
      });

      it("starts after a position, at 'end', and filters by type and stream prefix", async () => {
        const store = await open();
        const { position } = await store.append('a-1', [ev('Old1'), ev('Old2')]);
        const fromEnd = take(store.subscribe({ from: 'end' }), 1);
        const filtered = take(store.subscribe({ types: ['Wanted'], streamPrefix: 'b-' }), 2);
        const afterPos = take(store.subscribe({ from: position - 1n }), 2);
        await new Promise((r) => setTimeout(r, 50));
        await store.append('a-1', [ev('Wanted')]);
        await store.append('b-1', [ev('Unwanted'), ev('Wanted', { n: 1 })]);
        await store.append('b-2', [ev('Wanted', { n: 2 })]);
        expect((await fromEnd).map((e) => e.type)).toEqual(['Wanted']);
        expect((await filtered).map((e) => `${e.streamId}:${e.type}`)).toEqual(['b-1:Wanted', 'b-2:Wanted']);
        expect((await afterPos).map((e) => e.type)).toEqual(['Old2', 'Wanted']);
      });

      it('stops when its signal aborts', async () => {
        const store = await open();
        await store.append('s', [ev('A')]);
        const controller = new AbortController();
        const seen: string[] = [];
        const done = (async () => {
          for await (const e of store.subscribe({ signal: controller.signal })) seen.push(e.type);
        })();
        await new Promise((r) => setTimeout(r, 50));
        controller.abort();
        await done;
        expect(seen).toEqual(['A']);
      });

      it('never skips or repeats an event while many writers append', async () => {
        const store = await open();
        const writers = 6;
        const perWriter = 40;
        const total = writers * perWriter;
        const seen = take(store.subscribe(), total, 30_000);
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            for (let i = 0; i < perWriter; i += 2) await store.append(`w-${w}`, [ev('E', { w, i }), ev('E', { w, i: i + 1 })]);
          }),
        );
        const live = await seen;
        const all = await collect(store.readAll());
        expect(all).toHaveLength(total);
        expect(live.map((e) => e.id)).toEqual(all.map((e) => e.id));
      });
    });

    describe('snapshots', () => {
      it('saves, replaces and loads the latest snapshot per stream and name', async () => {
        const store = await open();
        expect(await store.loadSnapshot('acc-1', 'balance')).toBeUndefined();
        const base = { streamId: 'acc-1', name: 'balance', snapshotVersion: 1, takenAt: new Date().toISOString() };
        await store.saveSnapshot({ ...base, streamVersion: 10, state: { balance: 100 } });
        await store.saveSnapshot({ ...base, streamVersion: 20, state: { balance: 250, items: [1, 2] } });
        await store.saveSnapshot({ ...base, name: 'other', streamVersion: 3, state: null });
        expect(await store.loadSnapshot('acc-1', 'balance')).toEqual({
          ...base,
          streamVersion: 20,
          state: { balance: 250, items: [1, 2] },
        });
        expect((await store.loadSnapshot('acc-1', 'other'))?.state).toBeNull();
      });
    });

    describe('close', () => {
      it('rejects use after close with StoreClosed', async () => {
        const store = await open();
        await store.append('s', [ev('A')]);
        await store.close();
        await expect(store.append('s', [ev('B')])).rejects.toBeInstanceOf(StoreClosedError);
        await expect(collect(store.read('s'))).rejects.toBeInstanceOf(StoreClosedError);
        await expect(collect(store.readAll())).rejects.toBeInstanceOf(StoreClosedError);
      });
      closeDrainsContract(open);
    });

    describeCallOrder(open, target.propertyRuns);
    describeCategories(open, target.propertyRuns);
    describeRecordedAt(open, target.propertyRuns);

    describe('properties (fast-check)', () => {
      it('random concurrent appends: no lost or duplicated events, contiguous versions, results match storage', async () => {
        const store = await open();
        let run = 0;
        const streamArb = fc.constantFrom('a', 'b', 'c');
        const opArb = fc.record({
          stream: streamArb,
          count: fc.integer({ min: 0, max: 4 }),
          expected: fc.oneof(
            fc.constantFrom<ExpectedVersion>('any', 'no_stream', 'exists'),
            fc.integer({ min: 0, max: 8 }),
            fc.constant<'current'>('current'),
          ),
          retryOf: fc.option(fc.nat(), { nil: undefined }),
        });
        const roundsArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 });

        await fc.assert(
          fc.asyncProperty(roundsArb, async (rounds) => {
            const prefix = `r${run++}-`;
            const model = new Map<string, string[]>(); // stream -> event ids in version order
            type Sent = { stream: string; events: NewEvent[]; expected: ExpectedVersion };
            const sent: Sent[] = [];
            for (const round of rounds) {
              const ops = round.map((op) => {
                const earlier = op.retryOf !== undefined && sent.length ? sent[op.retryOf % sent.length] : undefined;
                if (earlier) return { ...earlier, retry: true };
                const stream = prefix + op.stream;
                const expected = op.expected === 'current' ? (model.get(stream)?.length ?? 0) : op.expected;
                const events = Array.from({ length: op.count }, (_, i) => ev('E', { i }, { id: randomUUID() }));
                return { stream, events, expected, retry: false };
              });
              const versionsBefore = new Map([...model].map(([s, ids]) => [s, ids.length]));
              const outcomes = await Promise.allSettled(
                ops.map((op) => store.append(op.stream, op.events, { expectedVersion: op.expected })),
              );
              // Apply successes in position order to the model, checking each against storage.
              const successes: Array<{ op: (typeof ops)[number]; version: number; position: bigint }> = [];
              outcomes.forEach((outcome, i) => {
                const op = ops[i] as (typeof ops)[number];
                if (outcome.status === 'fulfilled')
                  successes.push({ op, version: outcome.value.streamVersion, position: outcome.value.position });
                else {
                  expect(outcome.reason).toBeInstanceOf(LoglineError);
                  expect(['WrongExpectedVersion', 'IdempotencyConflict']).toContain(outcome.reason.code);
                }
              });
              successes.sort((x, y) => x.version - y.version);
              for (const { op, version } of successes) {
                if (op.events.length === 0) continue;
                const ids = model.get(op.stream) ?? [];
                const firstId = (op.events[0] as NewEvent).id as string;
                if (ids.includes(firstId)) {
                  // An idempotent retry: the original's result, nothing new.
                  expect(version).toBe(ids.indexOf(firstId) + op.events.length);
                } else {
                  expect(version).toBe(ids.length + op.events.length);
                  ids.push(...op.events.map((e) => e.id as string));
                  model.set(op.stream, ids);
                }
              }
              for (const [i, op] of ops.entries()) {
                const firstId = op.events[0]?.id;
                const index = firstId === undefined ? -1 : (model.get(op.stream) ?? []).indexOf(firstId);
                // Retrying an append that had landed before this round always succeeds.
                if (op.retry && index >= 0 && index < (versionsBefore.get(op.stream) ?? 0)) expect(outcomes[i]?.status).toBe('fulfilled');
                if (!op.retry && op.events.length > 0) sent.push(op);
              }
              // A lone new append is fully predictable from the model.
              if (ops.length === 1 && !(ops[0] as (typeof ops)[number]).retry) {
                const op = ops[0] as (typeof ops)[number];
                const before = versionsBefore.get(op.stream) ?? 0;
                const fits =
                  op.expected === 'any' ||
                  (op.expected === 'no_stream' && before === 0) ||
                  (op.expected === 'exists' && before > 0) ||
                  op.expected === before;
                expect(outcomes[0]?.status).toBe(fits ? 'fulfilled' : 'rejected');
              }
            }
            // Storage equals the model: every acknowledged event once, versions 1..n, nothing else.
            const stored = await collect(store.readAll({ streamPrefix: prefix }));
            for (let i = 1; i < stored.length; i++)
              expect((stored[i] as RecordedEvent).position > (stored[i - 1] as RecordedEvent).position).toBe(true);
            expect(new Set(stored.map((e) => e.id)).size).toBe(stored.length);
            for (const [stream, ids] of model) {
              const events = await collect(store.read(stream));
              expect(events.map((e) => e.id)).toEqual(ids);
              expect(events.map((e) => e.streamVersion)).toEqual(ids.map((_, i) => i + 1));
            }
            expect(stored.length).toBe([...model.values()].reduce((n, ids) => n + ids.length, 0));
          }),
          { numRuns: target.propertyRuns },
        );
      }, 120_000);

      it('readAll pages and subscribe deliver exactly the log, whatever the page boundaries', async () => {
        const store = await open();
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 }),
            fc.integer({ min: 1, max: 700 }),
            async (sizes, limit) => {
              const prefix = `p${run++}-`;
              const head = await store.headPosition();
              for (const [i, size] of sizes.entries())
                await store.append(
                  `${prefix}${i % 2}`,
                  Array.from({ length: size }, () => ev('E')),
                );
              const expected = await collect(store.readAll({ from: head }));
              const total = sizes.reduce((a, b) => a + b, 0);
              expect(expected).toHaveLength(total);
              // Walk with an arbitrary page size: every event once, in order.
              const walked: RecordedEvent[] = [];
              let from = head;
              for (;;) {
                const page = await collect(store.readAll({ from, limit }));
                walked.push(...page);
                if (page.length < limit) break;
                from = (page[page.length - 1] as RecordedEvent).position;
              }
              expect(walked.map((e) => e.id)).toEqual(expected.map((e) => e.id));
              const live = await take(store.subscribe({ from: head }), total);
              expect(live.map((e) => e.id)).toEqual(expected.map((e) => e.id));
            },
          ),
          { numRuns: Math.max(5, Math.floor(target.propertyRuns / 2)) },
        );
      }, 120_000);
    });
  });
}
