import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidStoreUrlError, openStore, SchemaTooNewError } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openStore(url)', () => {
  it('opens memory and sqlite stores by scheme, creating the directory of a new file', async () => {
    const memory = await openStore('memory:');
    expect(memory.backend).toBe('memory');
    await memory.close();
    const file = join(dir, 'nested', 'deeper', 'x.db');
    const sqlite = await openStore(`sqlite:${file}?synchronous=normal&busyTimeoutMs=100&pollMs=50`);
    expect(sqlite.backend).toBe('sqlite');
    await sqlite.append('s', [{ type: 'A', data: 1 }]);
    await sqlite.close();
    const again = await openStore(`sqlite:${file}`);
    expect(await again.streamVersion('s')).toBe(1);
    await again.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('passes limits to the store', async () => {
    const store = await openStore('memory:', { limits: { maxAppendEvents: 1 } });
    await expect(
      store.append('s', [
        { type: 'A', data: 1 },
        { type: 'A', data: 2 },
      ]),
    ).rejects.toMatchObject({ code: 'AppendTooLarge' });
    await store.close();
  });

  it.each([
    ['', /empty/],
    ['mysql://localhost/db', /unknown scheme 'mysql:'/],
    ['./file.db', /no scheme|unknown scheme/],
    ['sqlite:', /file path is missing/],
    ['sqlite:./x.db?synchronous=sometimes', /synchronous must be one of/],
    ['sqlite:./x.db?busyTimeoutMs=-5', /busyTimeoutMs must be a non-negative integer/],
  ])('rejects %j with a clear error', async (url, message) => {
    const error = await openStore(url).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidStoreUrlError);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/Expected 'memory:', 'sqlite:<path>'/);
  });

  it('refuses a SQLite file written by a newer schema', async () => {
    const file = join(dir, 'future.db');
    const db = new Database(file);
    db.pragma('user_version = 999');
    db.close();
    await expect(openStore(`sqlite:${file}`)).rejects.toBeInstanceOf(SchemaTooNewError);
  });
});
