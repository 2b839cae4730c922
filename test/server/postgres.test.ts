import { describe, it } from 'vitest';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { describeHttpApi } from './api-suite.js';

const reachable = await requirePostgres();
if (reachable) {
  describeHttpApi('postgres', {
    async open() {
      const { url, drop } = await freshSchemaUrl();
      return { url, cleanup: drop };
    },
  });
} else {
  describe.skip('HTTP API on postgres (PostgreSQL unreachable)', () => it('skipped', () => {}));
}
