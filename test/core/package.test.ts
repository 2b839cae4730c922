/**
 * The published shape: `npm test` builds dist/ first; here a plain Node process imports the
 * package by its name (self-reference through package.json "exports"), as a user would.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('the logline bin works from a clone: npm ci runs prepare, which builds the dist/ the bin points at', () => {
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(readFileSync(`${root}${pkg.bin.logline}`, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    // The file the bin points at, run as its shebang runs it. Not through npx: npm 11's npx runs the
    // project's prepare script first, and a rebuild of dist/ under tests that import it breaks them.
    const help = execFileSync(process.execPath, [`${root}${pkg.bin.logline}`, '--help'], { cwd: root, encoding: 'utf8' });
    expect(help).toMatch(/^Usage: logline /);
    expect(help).toContain('$ logline import backup.ndjson');
  }, 30_000);

  it("loads no backend module on import 'logline' (openStore imports a backend when its URL scheme is used)", () => {
    // A resolve hook refuses any module under dist/stores/: importing one fails the import.
    const hook = `export async function resolve(specifier, context, next) {
      const resolved = await next(specifier, context);
      if (/\\/(src|dist)\\/stores\\//.test(resolved.url)) throw new Error('backend module loaded: ' + resolved.url);
      return resolved;
    }`;
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
      const logline = await import('logline');
      const memory = await import('logline/memory').then(() => 'loaded', (e) => e.message);
      console.log(JSON.stringify({ openStore: typeof logline.openStore, memory }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
    expect(out.openStore).toBe('function');
    // The hook works: the backend's own entry point does load it.
    expect(out.memory).toContain('backend module loaded: ');
  });

  it('names the driver to install when a backend driver is missing', () => {
    // A project with Logline and its own dependencies, but none of the optional drivers.
    const app = mkdtempSync(join(tmpdir(), 'logline-nodriver-'));
    try {
      cpSync(`${root}dist`, join(app, 'dist'), { recursive: true });
      cpSync(`${root}package.json`, join(app, 'package.json'));
      for (const dep of Object.keys(pkg.dependencies)) {
        const target = join(app, 'node_modules', dep);
        cpSync(join(root, 'node_modules', dep), target, { recursive: true, dereference: true });
      }
      const script = `
        import { openStore } from './dist/index.js';
        const out = {};
        for (const url of ['sqlite:./x.db', 'postgres://postgres@127.0.0.1:5432/test']) {
          const e = await openStore(url).catch((e) => e);
          out[url.slice(0, 6)] = { code: e.code, message: e.message };
        }
        const memory = await openStore('memory:');
        out.memory = memory.backend;
        console.log(JSON.stringify(out));`;
      const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' }));
      expect(out.memory).toBe('memory');
      expect(out.sqlite).toMatchObject({ code: 'DriverMissing', message: expect.stringContaining('npm install better-sqlite3') });
      expect(out.postgr).toMatchObject({ code: 'DriverMissing', message: expect.stringContaining('npm install postgres') });
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 60_000);
});
