/** A writer that cannot get the write lock in time fails with a typed error and stores nothing. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../src/index.js';
import { openSqliteStore } from '../../../src/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('gives StoreUnavailable when another connection holds the write lock past busyTimeoutMs', async () => {
  const file = join(dir, 'locked.db');
  const store = await openSqliteStore({ path: file, busyTimeoutMs: 100 });
  await store.append('s', [{ type: 'Before', data: {} }]);
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  const error = await store.append('s', [{ type: 'Blocked', data: {} }]).catch((e) => e);
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect(error.message).toMatch(/write lock.*nothing was stored/);
  other.exec('ROLLBACK');
  other.close();
  await store.append('s', [{ type: 'After', data: {} }], { expectedVersion: 1 });
  const types: string[] = [];
  for await (const e of store.read('s')) types.push(e.type);
  expect(types).toEqual(['Before', 'After']);
  await store.close();
});
