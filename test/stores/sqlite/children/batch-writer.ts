/**
 * Child process for the crash test: appends batches of 100 events forever, spread over a few
 * streams, and prints `ack <batchId> <stream> <lastVersion>` after each acknowledged append.
 * The parent kill -9s it at random moments.
 */
import { randomUUID } from 'node:crypto';
import { openSqliteStore } from '../../../../src/sqlite.js';

const [file = '', prefix = 'w'] = process.argv.slice(2);
const store = await openSqliteStore({ path: file });
process.stdout.write('ready\n');
for (let n = 0; ; n++) {
  const batch = `${prefix}-${n}-${randomUUID().slice(0, 8)}`;
  const stream = `crash-${n % 5}`;
  const events = Array.from({ length: 100 }, (_, i) => ({ type: 'Chunk', data: { batch, i, pad: 'x'.repeat(200) } }));
  const { streamVersion } = await store.append(stream, events);
  process.stdout.write(`ack ${batch} ${stream} ${streamVersion}\n`);
}
