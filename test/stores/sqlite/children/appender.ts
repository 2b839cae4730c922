/**
 * Child process: appends `count` events to `stream`, one per append, `gapMs` apart. Each event
 * carries the time its append started (`at`, ms since epoch) so that the reader can
 * measure the cross-process wake-up latency.
 */
import { openSqliteStore, type SqliteSynchronous } from '../../../../src/sqlite.js';

const [file = '', stream = 's', count = '10', gapMs = '5', synchronous = 'full'] = process.argv.slice(2);
const store = await openSqliteStore({ path: file, synchronous: synchronous as SqliteSynchronous });
for (let i = 0; i < Number(count); i++) {
  await store.append(stream, [{ type: 'Ticked', data: { i, at: Date.now() } }]);
  await new Promise((resolve) => setTimeout(resolve, Number(gapMs)));
}
await store.close();
