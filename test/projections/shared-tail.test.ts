/**
 * The shared live read (src/projections/shared-tail.ts) and coalesced group checkpoints
 * (joinGroup's checkpointMs), on a real SQLite file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStore, PositionBeyondHeadError, type RecordedEvent } from '../../src/index.js';
import { backendFor } from '../../src/projections/registry.js';
import { SharedTail } from '../../src/projections/shared-tail.js';
import { joinGroup } from '../../src/projections.js';
import { event, sleep, take } from '../helpers/collect.js';
import { sqliteBackend, type TestStore } from './stores.js';

let opened: TestStore[] = [];
const open = async (): Promise<EventStore> => {
  const t = await sqliteBackend.open();
  opened.push(t);
  return t.store;
};
afterEach(async () => {
  for (const t of opened) await t.dispose();
  opened = [];
});

/** Counts the store's live reads and page reads, to see that consumers share one. */
function counting(store: EventStore) {
  const counts = { subscribe: 0, readAll: 0 };
  const counted: EventStore = Object.create(store);
  counted.subscribe = (options) => {
    counts.subscribe++;
    return store.subscribe(options);
  };
  counted.readAll = (options) => {
    counts.readAll++;
    return store.readAll(options);
  };
  counted.headPosition = () => store.headPosition();
  return { store: counted, counts };
}

describe('shared tail', () => {
  it('serves every consumer from one live read, each from its own position, with filters, and the far-behind from the store', async () => {
    const store = await open();
    for (let i = 0; i < 50; i++) await store.append(`order-${i % 5}`, [event(i % 2 ? 'Paid' : 'Placed', { i })]);
    const { store: counted, counts } = counting(store);
    const tail = new SharedTail(counted);
    const controller = new AbortController();
    const { signal } = controller;
    const head = take(tail.subscribe({ from: 50n, signal }), 30);
    const paidOnly = take(tail.subscribe({ from: 50n, signal, types: ['Paid'] }), 15);
    const behind = take(tail.subscribe({ from: 10n, signal }), 70);
    await sleep(50);
    for (let i = 50; i < 80; i++) await store.append(`order-${i % 5}`, [event(i % 2 ? 'Paid' : 'Placed', { i })]);
    const [atHead, paid, fromTen] = await Promise.all([head, paidOnly, behind]);
    controller.abort();
    expect(atHead.map((e) => e.position)).toEqual(Array.from({ length: 30 }, (_, i) => BigInt(51 + i)));
    expect(paid.every((e) => e.type === 'Paid')).toBe(true);
    expect(paid.map((e) => e.position)).toEqual(Array.from({ length: 15 }, (_, i) => BigInt(52 + 2 * i)));
    expect(fromTen.map((e) => e.position)).toEqual(Array.from({ length: 70 }, (_, i) => BigInt(11 + i)));
    // One live read for the three; only the consumer that started behind the buffer read pages.
    expect(counts.subscribe).toBe(1);
    expect(counts.readAll).toBeGreaterThanOrEqual(1);
    expect(counts.readAll).toBeLessThanOrEqual(2);
  });

  it('a consumer the buffer left behind reads the store until it is near again, missing nothing', async () => {
    const store = await open();
    const { store: counted, counts } = counting(store);
    const tail = new SharedTail(counted);
    const controller = new AbortController();
    const slow = tail.subscribe({ from: 0n, signal: controller.signal })[Symbol.asyncIterator]();
    const first = slow.next(); // joins the tail, then waits for an event
    await sleep(30);
    // Far more than the buffer holds, appended while the consumer takes nothing.
    for (let i = 0; i < 30; i++)
      await store.append(
        `s-${i % 4}`,
        Array.from({ length: 50 }, (_, j) => event('E', { n: i * 50 + j })),
      );
    await sleep(100);
    const positions = [(await first).value?.position];
    for (let i = 1; i < 1500; i++) positions.push((await slow.next()).value?.position);
    controller.abort();
    await slow.return?.(undefined);
    expect(positions).toEqual(Array.from({ length: 1500 }, (_, i) => BigInt(i + 1)));
    expect(counts.readAll).toBeGreaterThanOrEqual(1);
  });

  it('stops its read when the last consumer leaves and starts a fresh one for the next', async () => {
    const store = await open();
    const { store: counted, counts } = counting(store);
    const tail = new SharedTail(counted);
    const first = new AbortController();
    const one = take(tail.subscribe({ from: 0n, signal: first.signal }), 1);
    await sleep(20);
    await store.append('a-1', [event('A')]);
    expect((await one).map((e: RecordedEvent) => e.position)).toEqual([1n]);
    first.abort();
    await sleep(20);
    const second = new AbortController();
    const two = take(tail.subscribe({ from: 1n, signal: second.signal }), 1);
    await sleep(20);
    await store.append('a-1', [event('A')]);
    expect((await two).map((e: RecordedEvent) => e.position)).toEqual([2n]);
    second.abort();
    expect(counts.subscribe).toBe(2);
  });

  it('fails a consumer whose position is beyond the head', async () => {
    const store = await open();
    await store.append('a-1', [event('A')]);
    const tail = new SharedTail(store);
    const controller = new AbortController();
    await expect(take(tail.subscribe({ from: 5n, signal: controller.signal }), 1, 5_000)).rejects.toBeInstanceOf(PositionBeyondHeadError);
    controller.abort();
  });
});

describe('coalesced group checkpoints (checkpointMs)', () => {
  it('saves within checkpointMs, never leaves more than batchSize handled events unsaved, and saves on stop', async () => {
    const store = await open();
    const backend = await backendFor(store);
    let saves = 0;
    const save = backend.saveGroupCheckpoints.bind(backend);
    backend.saveGroupCheckpoints = (...args) => {
      saves++;
      return save(...args);
    };
    const handled: bigint[] = [];
    let worstUnsaved = 0;
    const saved = async () => {
      const checkpoints = (await backend.listCheckpoints()).filter((c) => c.name.startsWith('coalesced#'));
      return checkpoints.length ? checkpoints.reduce((min, c) => (c.position < min ? c.position : min), 2n ** 62n) : 0n;
    };
    const worker = await joinGroup(store, {
      group: 'coalesced',
      partitions: 2,
      batchSize: 5,
      checkpointMs: 300,
      handler: async (e) => {
        // Handled but unsaved, seen from the handler: what a crash now would deliver again.
        worstUnsaved = Math.max(worstUnsaved, Number(e.position - (await saved())));
        handled.push(e.position);
      },
    });
    // One event per append, handled live one by one: far fewer saves than events.
    for (let i = 0; i < 40; i++) {
      await store.append(`s-${i % 3}`, [event('E', { i })]);
      await sleep(2);
    }
    const deadline = Date.now() + 5_000;
    while (handled.length < 40 && Date.now() < deadline) await sleep(10);
    expect(handled).toHaveLength(40);
    // At most batchSize handled events unsaved, counting the one being handled; about one save per batchSize events.
    expect(worstUnsaved).toBeLessThanOrEqual(5);
    expect(saves).toBeLessThanOrEqual(40 / 5 + 2);
    // The timer saves the rest.
    await sleep(600);
    expect(await saved()).toBe(40n);
    await store.append('s-0', [event('E', { last: true })]);
    while (handled.length < 41 && Date.now() < deadline + 2_000) await sleep(10);
    await worker.stop();
    expect(await saved()).toBe(41n);
  });
});
