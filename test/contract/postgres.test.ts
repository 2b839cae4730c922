import { afterAll, describe } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { openPostgresStore } from '../../src/postgres.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { describeContract } from './contract.js';

const reachable = await requirePostgres();

// Every contract test opens one store and is done with it when the next test opens another, so
// the previous one is closed and its schema dropped right away: the suite holds one small pool at
// a time on a PostgreSQL that other suites share.
let previous: { store: EventStore; drop(): Promise<void> } | undefined;
const retire = async () => {
  if (!previous) return;
  const { store, drop } = previous;
  previous = undefined;
  await store.close().catch(() => {});
  await drop();
};
afterAll(retire);

describe.skipIf(!reachable)('postgres', () => {
  describeContract('postgres', {
    open: async (options) => {
      await retire();
      const { url, drop } = await freshSchemaUrl();
      const store = await openPostgresStore({ url, limits: options?.limits, poolSize: 2 });
      previous = { store, drop };
      return store;
    },
    propertyRuns: 12,
  });
});
