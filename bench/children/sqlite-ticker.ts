/** Bench child: appends one event every `gapMs` ms carrying the wall-clock send time. */
import { openSqliteStore } from '../../src/sqlite.js';

const [file = '', count = '500', gapMs = '5'] = process.argv.slice(2);
const store = await openSqliteStore({ path: file });
for (let i = 0; i < Number(count); i++) {
  await store.append('ticks', [{ type: 'Ticked', data: { i, sentAt: performance.timeOrigin + performance.now() } }]);
  await new Promise((resolve) => setTimeout(resolve, Number(gapMs)));
}
await store.close();
