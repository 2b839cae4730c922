import { describe } from 'vitest';
import { openPostgresStore } from '../../src/postgres.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { describeContract } from './contract.js';
import { oneAtATime } from './one-at-a-time.js';

const reachable = await requirePostgres();

describe.skipIf(!reachable)('postgres', () => {
  describeContract('postgres', {
    // Small pools, one at a time, on a PostgreSQL that other suites share.
    open: oneAtATime(async (options) => {
      const { url, drop } = await freshSchemaUrl();
      return { store: await openPostgresStore({ url, limits: options?.limits, masterKey: options?.masterKey, poolSize: 2 }), drop };
    }),
    propertyRuns: 12,
  });
});
