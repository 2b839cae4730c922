/**
 * The published shape: `npm test` builds dist/ first; here a plain Node process imports the
 * package by its name (self-reference through package.json "exports"), as a user would.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));

describe('package', () => {
  it('declares every subpath export with types, built into dist', () => {
    for (const [subpath, target] of Object.entries(pkg.exports as Record<string, { types: string; import: string } | string>)) {
      if (typeof target === 'string') continue;
      expect(existsSync(`${root}${target.import}`), `${subpath} -> ${target.import} (run npm run build)`).toBe(true);
      expect(existsSync(`${root}${target.types}`), `${subpath} -> ${target.types}`).toBe(true);
    }
    for (const driver of ['better-sqlite3', 'postgres']) expect(pkg.peerDependenciesMeta[driver].optional).toBe(true);
    expect(pkg.dependencies).not.toHaveProperty('better-sqlite3');
    expect(pkg.dependencies).not.toHaveProperty('postgres');
  });

  it("imports as 'logline' from plain Node and works on memory and SQLite", () => {
    const script = `
      import { openStore, WrongExpectedVersionError } from 'logline';
      import { openSqliteStore } from 'logline/sqlite';
      const store = await openStore('sqlite::memory:');
      await store.append('a-1', [{ type: 'Created', data: { n: 1 } }], { expectedVersion: 'no_stream' });
      const error = await store.append('a-1', [{ type: 'Created', data: {} }], { expectedVersion: 'no_stream' }).catch((e) => e);
      const events = [];
      for await (const e of store.read('a-1')) events.push(e.type);
      console.log(JSON.stringify({ events, conflict: error instanceof WrongExpectedVersionError, sqlite: typeof openSqliteStore }));
      await store.close();`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ events: ['Created'], conflict: true, sqlite: 'function' });
  });
});
