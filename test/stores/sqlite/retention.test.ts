/** SQLite specifics of a scavenge (docs/lifecycle.md#retention-and-deletion): it gives space back on a new file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../src/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-sqlite-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite scavenge', () => {
  it('a new file uses incremental auto-vacuum, and a scavenge returns the freed pages to the file system', async () => {
    const store = await openSqliteStore({ path: join(dir, 'reclaim.db'), synchronous: 'normal' });
    const db = store.database;
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
    const big = { text: 'x'.repeat(2000) };
    for (let i = 0; i < 10; i++)
      await store.append(
        'bulky-1',
        Array.from({ length: 100 }, () => ({ type: 'Big', data: big })),
      );
    await store.append('small-1', [{ type: 'Small', data: {} }]);
    const before = db.pragma('page_count', { simple: true }) as number;
    await store.deleteStream('bulky-1');
    expect((await store.scavenge()).removed).toBe(1000);
    const after = db.pragma('page_count', { simple: true }) as number;
    expect(db.pragma('freelist_count', { simple: true })).toBe(0);
    // 1,000 events of 2 KB went: at least half the pages with them.
    expect(after).toBeLessThan(before / 2);
    expect(await store.streamVersion('bulky-1')).toBe(1000);
    await store.close();
  });
});
