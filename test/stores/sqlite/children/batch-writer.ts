/**
 * Child process for the crash test: appends 100 events per round forever, spread over a few
 * streams, and prints `ack <appendId> <stream> <lastVersion>` after each acknowledged append.
 * Mode `single`: one append of 100 events per round. Mode `coalesced`: four appends of 25 events
 * to four streams requested in the same turn of the event loop, so the store commits them in one
 * transaction (each in its savepoint); `sent <group>` is printed before they are requested.
 * The parent kill -9s it at random moments.
 */
import { randomUUID } from 'node:crypto';
import { openSqliteStore } from '../../../../src/sqlite.js';

const [file = '', prefix = 'w', mode = 'single'] = process.argv.slice(2);
const store = await openSqliteStore({ path: file });
process.stdout.write('ready\n');
const perRound = mode === 'coalesced' ? 4 : 1;
const n = 100 / perRound;
for (let round = 0; ; round++) {
  const group = `${prefix}-${round}-${randomUUID().slice(0, 8)}`;
  if (perRound > 1) process.stdout.write(`sent ${group}\n`);
  await Promise.all(
    Array.from({ length: perRound }, async (_, a) => {
      const batch = `${group}-${a}`;
      const stream = `crash-${(round * perRound + a) % 5}`;
      const events = Array.from({ length: n }, (_, i) => ({ type: 'Chunk', data: { batch, group, n, i, pad: 'x'.repeat(200) } }));
      const { streamVersion } = await store.append(stream, events);
      process.stdout.write(`ack ${batch} ${stream} ${streamVersion}\n`);
    }),
  );
}
