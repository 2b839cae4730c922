/** Child process: appends `count` events to `stream`, one per append, `gapMs` apart. */
import { openSqliteStore } from '../../../../src/sqlite.js';

const [file = '', stream = 's', count = '10', gapMs = '5'] = process.argv.slice(2);
const store = await openSqliteStore({ path: file });
for (let i = 0; i < Number(count); i++) {
  await store.append(stream, [{ type: 'Ticked', data: { i } }]);
  await new Promise((resolve) => setTimeout(resolve, Number(gapMs)));
}
await store.close();
