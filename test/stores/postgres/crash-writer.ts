/**
 * Child process for crash.test.ts: appends batches to a PostgreSQL store from several concurrent
 * loops (so commits are coalesced) and prints one line per acknowledged append:
 *   ACK <appendId> <stream> <count> <streamVersion>
 * The parent kills it with SIGKILL at random moments.
 */
import { randomUUID } from 'node:crypto';
import { openPostgresStore } from '../../../src/postgres.js';

const url = process.argv[2] as string;
const store = await openPostgresStore({ url, poolSize: 2 });
process.stdout.write('READY\n');

await Promise.all(
  Array.from({ length: 4 }, async (_, loop) => {
    for (let i = 0; ; i++) {
      const appendId = randomUUID();
      const count = 1 + Math.floor(Math.random() * 20);
      const stream = `crash-${(loop + i) % 6}`;
      const events = Array.from({ length: count }, (_, k) => ({ type: 'Written', data: { appendId, count, k, pad: 'x'.repeat(200) } }));
      const { streamVersion } = await store.append(stream, events);
      process.stdout.write(`ACK ${appendId} ${stream} ${count} ${streamVersion}\n`);
    }
  }),
);
