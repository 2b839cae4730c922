import { afterAll, describe } from 'vitest';
import { openPostgresStore } from '../../src/postgres.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { describeContract } from './contract.js';

const reachable = await requirePostgres();
const drops: Array<() => Promise<void>> = [];
afterAll(async () => {
  // The contract suite closes its stores in its own afterAll, which runs first.
  for (const drop of drops) await drop();
});

describe.skipIf(!reachable)('postgres', () => {
  describeContract('postgres', {
    open: async (options) => {
      const { url, drop } = await freshSchemaUrl();
      drops.push(drop);
      return openPostgresStore({ url, limits: options?.limits, poolSize: 4 });
    },
    propertyRuns: 12,
  });
});
