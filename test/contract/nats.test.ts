import { afterAll, describe } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { openNatsStore } from '../../src/nats.js';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { describeContract } from './contract.js';

const reachable = await requireNats();

// Each contract test is done with its store when the next one opens: close it and delete its
// streams right away, so the shared server holds one test's streams at a time.
let previous: { store: EventStore; drop(): Promise<void> } | undefined;
const retire = async () => {
  if (!previous) return;
  const { store, drop } = previous;
  previous = undefined;
  await store.close().catch(() => {});
  await drop();
};
afterAll(retire);

describe.skipIf(!reachable)('nats', () => {
  describeContract('nats', {
    open: async (options) => {
      await retire();
      const { url, drop } = freshNatsUrl();
      const store = await openNatsStore({ url, limits: options?.limits });
      previous = { store, drop };
      return store;
    },
    propertyRuns: 12,
  });
});
