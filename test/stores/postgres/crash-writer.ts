/**
 * Child process for crash.test.ts and processes.test.ts: appends batches to a PostgreSQL store
 * from several concurrent loops (so commits are coalesced) and prints one line per acknowledged
 * append:
 *   ACK <appendId> <stream> <count> <streamVersion>
 * READY comes after its first append. The parent kills it with SIGKILL at random moments, or it
 * stops after `runMs` or on SIGTERM (closes the store, prints DONE, exits 0).
 *
 *   crash-writer.ts <url> [loops = 4] [share of commits held open 20–120 ms = 0] [runMs = forever]
 */
import { randomUUID } from 'node:crypto';
import { openPostgresStore } from '../../../src/postgres.js';

const [url = '', loopsArg = '4', holdArg = '0', runMsArg = '0'] = process.argv.slice(2);
const hold = Number(holdArg);
const runMs = Number(runMsArg);
const store = await openPostgresStore({
  url,
  poolSize: 2,
  testHooks:
    hold > 0
      ? {
          beforeCommit: async (tx) => {
            if (Math.random() < hold) await tx`SELECT pg_sleep(${0.02 + Math.random() * 0.1})`;
          },
        }
      : undefined,
});

async function appendOne(stream: string): Promise<void> {
  const appendId = randomUUID();
  const count = 1 + Math.floor(Math.random() * 20);
  const events = Array.from({ length: count }, (_, k) => ({ type: 'Written', data: { appendId, count, k, pad: 'x'.repeat(200) } }));
  const { streamVersion } = await store.append(stream, events);
  process.stdout.write(`ACK ${appendId} ${stream} ${count} ${streamVersion}\n`);
}

// READY once the session has appended: its first append (planning, a new connection) takes far
// longer than the others on a loaded machine, and a kill should land amid the writes.
await appendOne('crash-0');
process.stdout.write('READY\n');
let deadline = runMs > 0 ? Date.now() + runMs : Number.POSITIVE_INFINITY;
// SIGTERM: finish the appends in flight, close, exit 0 (SIGKILL is the crash).
process.on('SIGTERM', () => {
  deadline = 0;
});
await Promise.all(
  Array.from({ length: Number(loopsArg) }, async (_, loop) => {
    for (let i = 0; Date.now() < deadline; i++) await appendOne(`crash-${(loop + i) % 6}`);
  }),
);
await store.close();
process.stdout.write('DONE\n');
process.exit(0);
