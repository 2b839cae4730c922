/**
 * A key backup restores across backends (docs/lifecycle.md#backups-and-restores): the sealed
 * export and the subject keys of one backend, imported into a fresh store of another, read the
 * same (SQLite -> PostgreSQL -> NATS -> SQLite), with and without a master key wrapping the keys.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { openNatsStore } from '../../src/nats.js';
import { openPostgresStore } from '../../src/postgres.js';
import { openSqliteStore } from '../../src/sqlite.js';
import { backupOf, expectRestored, importEvents } from '../contract/subject-keys.js';
import { collect } from '../helpers/collect.js';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-keys-across-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pgReachable = await requirePostgres();
const natsReachable = await requireNats();

type Opened = { store: EventStore; drop(): Promise<void> };
type Open = (masterKey: Uint8Array | undefined) => Promise<Opened>;

const backends: Record<string, [Open, boolean]> = {
  sqlite: [
    async (masterKey) => ({ store: await openSqliteStore({ path: join(dir, `${randomUUID()}.db`), masterKey }), drop: async () => {} }),
    true,
  ],
  postgres: [
    async (masterKey) => {
      const { url, drop } = await freshSchemaUrl();
      return { store: await openPostgresStore({ url, masterKey, poolSize: 2 }), drop };
    },
    pgReachable,
  ],
  nats: [
    async (masterKey) => {
      const { url, drop } = freshNatsUrl();
      return { store: await openNatsStore({ url, masterKey }), drop };
    },
    natsReachable,
  ],
};

const pairs = [
  ['sqlite', 'postgres'],
  ['postgres', 'nats'],
  ['nats', 'sqlite'],
] as const;

describe.each(pairs)('subject keys from %s to %s', (from, to) => {
  const [openFrom, fromUp] = backends[from] as [Open, boolean];
  const [openTo, toUp] = backends[to] as [Open, boolean];

  it.skipIf(!fromUp || !toUp).each([
    ['raw keys', undefined],
    ['keys wrapped by a master key', randomBytes(32)],
  ])('%s: personal data reads plain, the forgotten subject stays forgotten', async (_, masterKey) => {
    const opened: Opened[] = [];
    try {
      const source = await openFrom(masterKey);
      opened.push(source);
      const a = `a-${randomUUID()}`;
      const b = `b-${randomUUID()}`;
      const { events, keys } = await backupOf(source.store, a, b);
      const target = await openTo(masterKey);
      opened.push(target);
      expect(await target.store.importSubjectKeys(keys)).toEqual({ imported: 2, unchanged: 0, forgotten: 0, conflicts: [] });
      await importEvents(target.store, events);
      await expectRestored(target.store, a, b);
      expect(await collect(target.store.exportSubjectKeys())).toEqual(keys);
    } finally {
      for (const { store, drop } of opened) {
        await store.close().catch(() => {});
        await drop();
      }
    }
  });
});
