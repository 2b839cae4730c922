/**
 * The HTTP API suite on NATS, on a nats-server of the test's own configured with an 8 MiB
 * max_payload (the suite's largest append is ~6.3 MB; the machine's server keeps the 1 MiB
 * default, where such an append is a 413 AppendTooLarge, see test/stores/nats/store.test.ts).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { freshNatsUrl } from '../helpers/nats.js';
import { requireNatsServer, startServer, type TestServers } from '../helpers/nats-servers.js';
import { describeHttpApi } from './api-suite.js';

if (requireNatsServer()) {
  let server: TestServers;
  beforeAll(async () => {
    server = await startServer({ maxPayload: 8 * 1024 * 1024 });
  }, 30_000);
  afterAll(() => server?.stop());
  describeHttpApi('nats', {
    async open() {
      const { url, drop } = freshNatsUrl(server.url);
      return { url, cleanup: drop };
    },
  });
} else {
  describe.skip('HTTP API on nats (no nats-server binary)', () => it('skipped', () => {}));
}
