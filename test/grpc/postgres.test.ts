import { describe, it } from 'vitest';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { describeKurrentClient } from './suite.js';

const reachable = await requirePostgres();
if (reachable) {
  describeKurrentClient('postgres', {
    async open() {
      const { url, drop } = await freshSchemaUrl();
      return { store: url, cleanup: drop };
    },
  });
} else {
  describe.skip('KurrentDB client over gRPC on postgres (PostgreSQL unreachable)', () => it('skipped', () => {}));
}
