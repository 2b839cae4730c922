/** Temporal reads (as of version, recorded time, valid time) and retroactive corrections, on every real store. */
import { describe, expect, it } from 'vitest';
import {
  correctRetroactive,
  type Decider,
  deriveCorrections,
  type EventStore,
  findRetroactive,
  foldInValidTime,
  handleCommand,
  InvalidArgumentError,
  inValidTimeOrder,
  loadAggregate,
  type Recorded,
} from '../../src/index.js';
import { collect } from '../helpers/collect.js';
import { sleep, storeTargets } from './targets.js';

/** A price list: each event sets the price from its occurredAt on; state = [day, price] history. */
type PriceEvent = { type: 'PriceSet'; data: { price: number }; occurredAt?: string; metadata?: { [k: string]: string[] | string } };
type PriceCommand = { type: 'SetPrice'; data: { price: number; from: string } };
interface Prices {
  price: number | null;
  history: string[];
}
const prices: Decider<Prices, PriceCommand, PriceEvent> = {
  name: 'prices',
  initialState: () => ({ price: null, history: [] }),
  evolve: (s, e) => ({ price: e.data.price, history: [...s.history, `${e.occurredAt.slice(0, 10)}=${e.data.price}`] }),
  decide: (c) => ({ type: 'PriceSet', data: { price: c.data.price }, occurredAt: `${c.data.from}T00:00:00Z` }),
};
const setPrice = (price: number, from: string): PriceCommand => ({ type: 'SetPrice', data: { price, from } });

const recorded = (n: number, occurredAt: string, extra: Partial<Recorded<PriceEvent>> = {}): Recorded<PriceEvent> => ({
  id: `id-${n}`,
  type: 'PriceSet',
  data: { price: n },
  metadata: {},
  occurredAt,
  streamId: 's',
  streamVersion: n,
  position: BigInt(n),
  recordedAt: '2020-01-01T00:00:00.000Z',
  ...extra,
});

describe('valid-time helpers (pure)', () => {
  const events = [
    recorded(1, '2017-01-01T00:00:00Z'),
    recorded(2, '2017-03-01T00:00:00Z'),
    recorded(3, '2017-02-01T00:00:00Z'),
    recorded(4, '2017-02-01T00:00:00Z'),
  ];

  it('inValidTimeOrder sorts by occurredAt, ties by stream version', () => {
    expect(inValidTimeOrder(events).map((e) => e.streamVersion)).toEqual([1, 3, 4, 2]);
    expect(foldInValidTime(events, prices, '2017-02-15T00:00:00Z').price).toBe(4);
  });

  it('findRetroactive finds late events until a correction settles them', () => {
    expect(findRetroactive(events).map((e) => e.id)).toEqual(['id-3', 'id-4']);
    const settled = [...events, recorded(5, '2017-03-02T00:00:00Z', { metadata: { correctionOf: ['id-3'] } })];
    expect(findRetroactive(settled).map((e) => e.id)).toEqual(['id-4']);
  });

  it('deriveCorrections compares booked and actual and marks what it settles', () => {
    const corrections = deriveCorrections(events, prices, ({ booked, actual, retroactive }) => {
      expect(booked.price).toBe(4); // recorded order: the last one recorded
      expect(actual.price).toBe(2); // valid time: the one that happened last
      expect(retroactive).toHaveLength(2);
      return { type: 'PriceSet', data: { price: actual.price ?? 0 } };
    });
    expect(corrections).toEqual([{ type: 'PriceSet', data: { price: 2 }, metadata: { correctionOf: ['id-3', 'id-4'] } }]);
    expect(deriveCorrections(events.slice(0, 2), prices, () => ({ type: 'PriceSet', data: { price: 0 } }))).toEqual([]);
  });
});

for (const target of storeTargets()) {
  describe(`temporal reads on ${target.name}`, () => {
    let store: EventStore;
    const getStore = async () => (store ??= await target.open());

    it('as of a version, a recorded time, a valid time, and both times together', async () => {
      const s = await getStore();
      const streamId = `prices-${target.name}`;
      await handleCommand(s, streamId, setPrice(10, '2017-01-01'), prices);
      await handleCommand(s, streamId, setPrice(30, '2017-03-01'), prices);
      await sleep(5);
      const beforeLate = new Date().toISOString();
      await sleep(5);
      // Learned late: the price changed to 20 on 1 Feb.
      await handleCommand(s, streamId, setPrice(20, '2017-02-01'), prices);

      const load = (asOf: Parameters<typeof loadAggregate>[3]) => loadAggregate(s, streamId, prices, asOf).then((l) => l.state);
      expect((await load({})).history).toEqual(['2017-01-01=10', '2017-03-01=30', '2017-02-01=20']);
      expect(await load({ asOf: { version: 2 } })).toMatchObject({ price: 30 });
      expect(await load({ asOf: { version: 0 } })).toEqual({ price: null, history: [] });
      // What did we know before the late event was recorded?
      expect((await load({ asOf: { recordedAt: beforeLate } })).history).toEqual(['2017-01-01=10', '2017-03-01=30']);
      expect((await load({ asOf: { recordedAt: new Date(0) } })).price).toBeNull();
      // What was true in mid-February, as we know it now, and as we knew it then?
      expect(await load({ asOf: { occurredAt: '2017-02-15T00:00:00Z' } })).toEqual({
        price: 20,
        history: ['2017-01-01=10', '2017-02-01=20'],
      });
      expect(await load({ asOf: { occurredAt: '2017-02-15T00:00:00Z', recordedAt: beforeLate } })).toEqual({
        price: 10,
        history: ['2017-01-01=10'],
      });
      // Valid time today: all three in valid-time order.
      const now = await loadAggregate(s, streamId, prices, { asOf: { occurredAt: new Date() } });
      expect(now.state.history).toEqual(['2017-01-01=10', '2017-02-01=20', '2017-03-01=30']);
      expect(now).toMatchObject({ streamVersion: 3, eventsFolded: 3 });
      await expect(load({ asOf: { occurredAt: 'yesterday' } })).rejects.toThrow(InvalidArgumentError);
      await expect(load({ asOf: { version: -1 } })).rejects.toThrow(InvalidArgumentError);
    });

    it('correctRetroactive appends the domain’s corrections once, and valid-time folds skip them', async () => {
      const s = await getStore();
      const streamId = `prices-${target.name}-corrected`;
      await handleCommand(s, streamId, setPrice(10, '2017-01-01'), prices);
      await handleCommand(s, streamId, setPrice(30, '2017-03-01'), prices);
      const late = await handleCommand(s, streamId, setPrice(20, '2017-02-01'), prices);
      const restoreCurrent = ({ actual }: { actual: Prices }): PriceEvent => ({
        type: 'PriceSet',
        data: { price: actual.price ?? 0 },
        occurredAt: '2017-03-05T00:00:00Z',
      });
      const first = await correctRetroactive(s, streamId, prices, restoreCurrent, { metadata: { correlationId: 'fix-1' } });
      expect(first.events).toHaveLength(1);
      expect(first.events[0]).toMatchObject({
        data: { price: 30 },
        metadata: { correctionOf: [late.events[0]?.id], correlationId: 'fix-1' },
      });
      expect(first.state.price).toBe(30);
      // Settled: a second run finds nothing to do.
      const second = await correctRetroactive(s, streamId, prices, restoreCurrent);
      expect(second.events).toEqual([]);
      expect(await s.streamVersion(streamId)).toBe(4);
      // The correction is a recorded-order artefact: the valid-time view does not see it.
      const truth = await loadAggregate(s, streamId, prices, { asOf: { occurredAt: '2017-12-31T00:00:00Z' } });
      expect(truth.state.history).toEqual(['2017-01-01=10', '2017-02-01=20', '2017-03-01=30']);
      expect((await collect(s.read(streamId))).map((e) => e.metadata.correctionOf ?? null)).toEqual([
        null,
        null,
        null,
        [late.events[0]?.id],
      ]);
    });
  });
}
