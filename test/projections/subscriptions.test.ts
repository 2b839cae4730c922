import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStore, InvalidArgumentError, type RecordedEvent } from '../../src/index.js';
import {
  backoffDelay,
  getLag,
  listConsumers,
  listParked,
  PositionTimeoutError,
  ProjectionStoppedError,
  replayParked,
  startSubscription,
  waitForPosition,
} from '../../src/projections.js';
import { event, sleep } from '../helpers/collect.js';
import { backends, type TestStore } from './stores.js';

const fastRetry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 };

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

for (const backend of backends) {
  describe(`subscriptions on ${backend.name}`, () => {
    let opened: TestStore[] = [];
    const open = async () => {
      const t = await backend.open();
      opened.push(t);
      return t.store;
    };
    afterEach(async () => {
      for (const t of opened) await t.dispose();
      opened = [];
    });

    it('starts from the start, the end or a position, and filters by type, stream prefix and category', async () => {
      const store = await open();
      await store.append('order-1', [event('OrderPlaced'), event('OrderShipped')]);
      await store.append('user-1', [event('UserCreated')]);
      const fromStart: RecordedEvent[] = [];
      const fromEnd: RecordedEvent[] = [];
      const fromTwo: RecordedEvent[] = [];
      const filtered: RecordedEvent[] = [];
      const users: RecordedEvent[] = [];
      const subs = [
        await startSubscription(store, { name: 'start', handler: (e) => void fromStart.push(e) }),
        await startSubscription(store, { name: 'end', from: 'end', handler: (e) => void fromEnd.push(e) }),
        await startSubscription(store, { name: 'two', from: 2n, handler: (e) => void fromTwo.push(e) }),
        await startSubscription(store, {
          name: 'filtered',
          types: ['OrderPlaced', 'UserCreated'],
          streamPrefix: 'order-',
          handler: (e) => void filtered.push(e),
        }),
        await startSubscription(store, { name: 'users', category: 'user', handler: (e) => void users.push(e) }),
      ];
      const last = await store.append('order-2', [event('OrderPlaced')]);
      for (const sub of subs) await waitForPosition(sub, last.position);
      expect(fromStart.map((e) => e.position)).toEqual([1n, 2n, 3n, 4n]);
      expect(fromEnd.map((e) => e.position)).toEqual([4n]);
      expect(fromTwo.map((e) => e.position)).toEqual([3n, 4n]);
      expect(filtered.map((e) => `${e.streamId}/${e.type}`)).toEqual(['order-1/OrderPlaced', 'order-2/OrderPlaced']);
      expect(users.map((e) => `${e.streamId}/${e.type}`)).toEqual(['user-1/UserCreated']);
      for (const sub of subs) await sub.stop();
      await expect(startSubscription(store, { name: 'bad', category: 'user-1', handler: () => {} })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    });

    it('keeps its checkpoint in the backend: a restart continues where it stopped', async () => {
      const store = await open();
      await store.append('s', [event('A'), event('B')]);
      const seen: bigint[] = [];
      const first = await startSubscription(store, { name: 'durable', handler: (e) => void seen.push(e.position) });
      await waitForPosition(first, 2n);
      await first.stop();
      expect(first.status).toBe('stopped');
      await store.append('s', [event('C')]);
      // 'from' only applies without a stored checkpoint.
      const second = await startSubscription(store, { name: 'durable', from: 'end', handler: (e) => void seen.push(e.position) });
      await waitForPosition(second, 3n);
      await second.stop();
      expect(seen).toEqual([1n, 2n, 3n]);
      expect((await getLag(store, 'durable')).checkpoint).toBe(3n);
    });

    it("remembers where 'end' was across a restart", async () => {
      const store = await open();
      await store.append('s', [event('A')]);
      const sub = await startSubscription(store, { name: 'tail', from: 'end', handler: () => {} });
      await until(() => sub.status === 'live' || sub.status === 'catching-up');
      await sub.stop();
      await store.append('s', [event('B')]);
      const seen: bigint[] = [];
      const again = await startSubscription(store, { name: 'tail', from: 'end', handler: (e) => void seen.push(e.position) });
      await waitForPosition(again, 2n);
      await again.stop();
      expect(seen).toEqual([2n]);
    });

    it('backpressure: a blocked handler stops reading, so buffered events stay within one batch', async () => {
      const inner = await open();
      let pulled = 0;
      // The real store, with its reads counted: how many events left the store.
      const counted = async function* (source: AsyncIterable<RecordedEvent>) {
        for await (const e of source) {
          pulled++;
          yield e;
        }
      };
      const store: EventStore = {
        ...inner,
        readAll: (opts) => counted(inner.readAll(opts)),
        subscribe: (opts) => counted(inner.subscribe(opts)),
      };
      for (let i = 0; i < 20; i++)
        await store.append(
          `s-${i}`,
          Array.from({ length: 100 }, () => event('Tick')),
        );
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let handled = 0;
      const sub = await startSubscription(store, {
        name: 'slow',
        batchSize: 50,
        handler: async () => {
          handled++;
          await gate;
        },
      });
      await until(() => handled === 1);
      await sleep(100);
      expect(pulled).toBeLessThanOrEqual(51);
      release();
      await waitForPosition(sub, 2000n, { timeout: 20_000 });
      expect(handled).toBe(2000);
      await sub.stop();
    });

    it('retries a failing event with backoff, parks it, skips on, and replays it on request', async () => {
      const store = await open();
      await store.append('s', [event('Ok'), event('Poison'), event('Ok')]);
      let healed = false;
      let poisonAttempts = 0;
      const handled: bigint[] = [];
      const sub = await startSubscription(store, {
        name: 'skipper',
        retry: fastRetry,
        onFailure: 'skip',
        handler: (e) => {
          if (e.type === 'Poison' && !healed) {
            poisonAttempts++;
            throw new Error('cannot digest poison');
          }
          handled.push(e.position);
        },
      });
      await waitForPosition(sub, 3n);
      expect(poisonAttempts).toBe(3);
      expect(handled).toEqual([1n, 3n]);
      const parked = await listParked(store, { consumer: 'skipper' });
      expect(parked).toHaveLength(1);
      expect(parked[0]).toMatchObject({ position: 2n, attempts: 3, error: 'cannot digest poison' });
      expect(parked[0]?.stack).toContain('cannot digest poison');
      expect(parked[0]?.event.type).toBe('Poison');
      healed = true;
      expect(await replayParked(sub)).toEqual({ replayed: 1, failed: [] });
      expect(handled).toEqual([1n, 3n, 2n]);
      expect(await listParked(store, { consumer: 'skipper' })).toEqual([]);
      await sub.stop();
    });

    it("stops at a parked event with onFailure 'stop', and a restart retries it", async () => {
      const store = await open();
      await store.append('s', [event('Ok'), event('Poison'), event('Ok')]);
      const sub = await startSubscription(store, {
        name: 'stopper',
        retry: fastRetry,
        handler: (e) => {
          if (e.type === 'Poison') throw new Error('poison');
        },
      });
      await expect(sub.done).rejects.toBeInstanceOf(ProjectionStoppedError);
      expect(sub.status).toBe('stopped');
      expect(sub.position).toBe(1n);
      await expect(waitForPosition(sub, 3n)).rejects.toBeInstanceOf(ProjectionStoppedError);
      expect(await listParked(store)).toHaveLength(1);
      const seen: bigint[] = [];
      const again = await startSubscription(store, { name: 'stopper', handler: (e) => void seen.push(e.position) });
      await waitForPosition(again, 3n);
      expect(seen).toEqual([2n, 3n]);
      await again.stop();
    });

    it('waitForPosition times out with a typed error', async () => {
      const store = await open();
      const sub = await startSubscription(store, { name: 'idle', handler: () => {} });
      const error = await waitForPosition(sub, 5n, { timeout: 30 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PositionTimeoutError);
      expect((error as PositionTimeoutError).code).toBe('PositionTimeout');
      expect((error as PositionTimeoutError).toJSON()).toMatchObject({ error: 'PositionTimeout', position: '5' });
      await sub.stop();
    });

    it('reports lag in positions and seconds', async () => {
      const store = await open();
      await store.append('s', [event('A'), event('B'), event('C')]);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const sub = await startSubscription(store, {
        name: 'lagging',
        batchSize: 1,
        handler: async (e) => {
          if (e.position === 2n) await gate;
        },
      });
      await waitForPosition(sub, 1n);
      await sleep(20);
      const lagging = await getLag(store, 'lagging');
      expect(lagging).toMatchObject({ kind: 'subscription', checkpoint: 1n, head: 3n, lagPositions: 2, status: 'catching-up' });
      expect(lagging.lagSeconds).toBeGreaterThan(0);
      release();
      await waitForPosition(sub, 3n);
      const all = await listConsumers(store);
      expect(all.find((c) => c.name === 'lagging')).toMatchObject({ lagPositions: 0, lagSeconds: 0 });
      await sub.stop();
      await expect(getLag(store, 'nope')).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('rejects bad options with typed errors', async () => {
      const store = await open();
      const handler = () => {};
      await expect(startSubscription(store, { name: '', handler })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(startSubscription(store, { name: 'x y', handler })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(startSubscription(store, { name: 'ok', handler: 5 as never })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(startSubscription(store, { name: 'ok', handler, from: -1n })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(startSubscription(store, { name: 'ok', handler, batchSize: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(startSubscription(store, { name: 'ok', handler, retry: { maxAttempts: 0 } })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      const running = await startSubscription(store, { name: 'twice', handler });
      await expect(startSubscription(store, { name: 'twice', handler })).rejects.toBeInstanceOf(InvalidArgumentError);
      await running.stop();
      expect(await listParked(store)).toEqual([]);
    });

    it('property: delivers exactly the matching events, in order, whatever the batch size and interleaving', async () => {
      const streams = ['a-1', 'a-2', 'b-1'];
      const types = ['X', 'Y'];
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.constantFrom(...streams), fc.array(fc.constantFrom(...types), { minLength: 1, maxLength: 4 })), {
            minLength: 1,
            maxLength: 12,
          }),
          fc.integer({ min: 1, max: 7 }),
          fc.option(fc.constantFrom(...types), { nil: undefined }),
          fc.option(fc.constantFrom('a-', 'b-'), { nil: undefined }),
          fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
          async (appends, batchSize, type, prefix, category) => {
            const { store, dispose } = await backend.open();
            const half = Math.ceil(appends.length / 2);
            for (const [stream, ts] of appends.slice(0, half))
              await store.append(
                stream,
                ts.map((t) => event(t)),
              );
            const seen: RecordedEvent[] = [];
            const sub = await startSubscription(store, {
              name: 'prop',
              batchSize,
              types: type ? [type] : undefined,
              streamPrefix: prefix,
              category,
              handler: (e) => void seen.push(e),
            });
            // The rest arrives while it runs live.
            for (const [stream, ts] of appends.slice(half))
              await store.append(
                stream,
                ts.map((t) => event(t)),
              );
            await waitForPosition(sub, await store.headPosition());
            await sub.stop();
            const expected: bigint[] = [];
            for await (const e of store.readAll({ types: type ? [type] : undefined, streamPrefix: prefix, category }))
              expected.push(e.position);
            await dispose();
            expect(seen.map((e) => e.position)).toEqual(expected);
          },
        ),
        { numRuns: 15 },
      );
    });
  });
}

describe('retry backoff', () => {
  it('property: exponential, capped, with jitter in [delay/2, delay]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 40 }),
        (initial, cap, attempt) => {
          const retry = { maxAttempts: 50, initialDelayMs: initial, maxDelayMs: cap };
          const delay = Math.min(cap, initial * 2 ** (attempt - 1));
          const drawn = backoffDelay(retry, attempt);
          expect(drawn).toBeGreaterThanOrEqual(delay / 2);
          expect(drawn).toBeLessThanOrEqual(delay);
        },
      ),
      { numRuns: 200 },
    );
    // Jitter: repeated draws differ.
    const draws = new Set(Array.from({ length: 20 }, () => backoffDelay({ maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 10_000 }, 3)));
    expect(draws.size).toBeGreaterThan(1);
  });
});
