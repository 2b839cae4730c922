import { describe } from 'vitest';
import { openNatsStore } from '../../src/nats.js';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { describeContract } from './contract.js';
import { oneAtATime } from './one-at-a-time.js';

const reachable = await requireNats();

describe.skipIf(!reachable)('nats', () => {
  describeContract('nats', {
    // One test's streams at a time on the shared server: each is deleted when the next test opens.
    open: oneAtATime(async (options) => {
      const { url, drop } = freshNatsUrl();
      return { store: await openNatsStore({ url, limits: options?.limits, masterKey: options?.masterKey }), drop };
    }),
    propertyRuns: 12,
  });
});
