/**
 * Forget a person on SQLite, checked in the raw files (docs/lifecycle.md#forget-a-person): the
 * plaintext of personal fields never reaches the main file, the -wal or an export; after forget
 * the subject's key bytes are in neither file; a master key wraps the keys.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { unwrapKey } from '../../../src/core/personal-data.js';
import { InvalidArgumentError, type RecordedEvent } from '../../../src/index.js';
import { openSqliteStore } from '../../../src/sqlite.js';
import { collect } from '../../helpers/collect.js';
import { holdsKey, signedUp } from '../../helpers/personal-data.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-personal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Both database files as they are on disk now. */
const rawFiles = (path: string): Buffer =>
  Buffer.concat([readFileSync(path), existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0)]);

/** The stored (possibly wrapped) key of a subject, read through a second connection. */
function storedKey(path: string, subject: string): Buffer {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT key FROM subject_keys WHERE subject = ?').pluck().get(subject) as Buffer;
  } finally {
    db.close();
  }
}

describe('personal data in the SQLite files', () => {
  it('no plaintext in the main file, the WAL or an export; after forget no key bytes either', async () => {
    const path = join(dir, 'plain.db');
    const store = await openSqliteStore({ path });
    const homer = `homer-${randomUUID()}`;
    const marge = `marge-${randomUUID()}`;
    const homerEmail = `homer-${randomBytes(6).toString('hex')}@example.com`;
    const margeEmail = `marge-${randomBytes(6).toString('hex')}@example.com`;
    for (let i = 0; i < 20; i++) await store.append(`user-${i % 3}`, [signedUp(i % 2 ? homer : marge, i % 2 ? homerEmail : margeEmail)]);
    // A snapshot that copied the email: the documented rule drops it when its subject is forgotten.
    await store.saveSnapshot({
      streamId: 'user-1',
      name: 'user',
      streamVersion: 7,
      snapshotVersion: 1,
      state: { email: homerEmail },
      takenAt: 'x',
    });

    const homerKey = storedKey(path, homer);
    const margeKey = storedKey(path, marge);
    expect(homerKey.length).toBe(32);
    const before = rawFiles(path);
    // The search finds what is there (the plain field, the keys), so its "absent" means something.
    expect(before.includes('PLAIN-MARKER')).toBe(true);
    expect(holdsKey(before, homerKey)).toBe(true);
    expect(before.includes(homerEmail)).toBe(true); // only in the snapshot, by the app's own choice
    expect(before.includes(margeEmail)).toBe(false);

    const exported = (await collect(store.readAll({ sealed: true }))).map((e) => JSON.stringify({ ...e, position: String(e.position) }));
    const exportText = Buffer.from(exported.join('\n'));
    expect(exportText.includes('PLAIN-MARKER')).toBe(true);
    for (const secret of [homerEmail, margeEmail]) expect(exportText.includes(secret)).toBe(false);
    expect(holdsKey(exportText, homerKey) || holdsKey(exportText, margeKey)).toBe(false);

    await store.forget(homer);
    const after = rawFiles(path);
    expect(holdsKey(after, homerKey)).toBe(false);
    expect(after.includes(homerEmail)).toBe(false); // the snapshot is gone, and zeroed (secure_delete)
    expect(holdsKey(after, margeKey)).toBe(true); // the other subject keeps hers

    // Reads: homer forgotten, marge plain, on the same open store.
    const events = await collect(store.readAll());
    expect(
      events.filter((e) => e.metadata.subject === homer).every((e) => e.metadata.forgotten === true && !('email' in (e.data as object))),
    ).toBe(true);
    expect(events.filter((e) => e.metadata.subject === marge).map((e) => (e.data as { email: string }).email)).toEqual(
      Array(10).fill(margeEmail),
    );
    await store.close();
  });

  it('a master key wraps every subject key: the raw key is never stored, and the store opens it only with that master key', async () => {
    const path = join(dir, 'wrapped.db');
    const masterKey = randomBytes(32);
    const store = await openSqliteStore({ path, masterKey });
    const subject = `s-${randomUUID()}`;
    const email = `wrapped-${randomBytes(6).toString('hex')}@example.com`;
    await store.append('user-w', [signedUp(subject, email)]);
    await store.close();

    const wrapped = storedKey(path, subject);
    expect(wrapped.length).toBe(60); // IV, tag, wrapped key
    const key = unwrapKey(wrapped, masterKey);
    expect(holdsKey(rawFiles(path), key)).toBe(false);

    for (const wrong of [undefined, randomBytes(32)]) {
      const other = await openSqliteStore({ path, masterKey: wrong });
      const error = await collect(other.read('user-w')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details.argument).toBe('masterKey');
      await other.close();
    }
    await expect(openSqliteStore({ path, masterKey: randomBytes(16) })).rejects.toBeInstanceOf(InvalidArgumentError);

    const reopened = await openSqliteStore({ path, masterKey });
    expect(((await collect(reopened.read('user-w')))[0] as RecordedEvent).data).toEqual({ email, plan: 'PLAIN-MARKER' });
    await reopened.forget(subject);
    expect(((await collect(reopened.read('user-w')))[0] as RecordedEvent).metadata.forgotten).toBe(true);
    expect(rawFiles(path).includes(wrapped)).toBe(false);
    await reopened.close();
  });
});
