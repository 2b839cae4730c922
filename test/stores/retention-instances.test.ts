/**
 * Retention and deletion seen by another store instance on the same data (another process, in
 * production): settings hide events there too, a tombstone refuses its appends at once, and a
 * scavenge by one leaves the other's reads and versions right (docs/lifecycle.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { StreamDeletedError } from '../../src/index.js';
import { openNatsStore } from '../../src/nats.js';
import { openPostgresStore } from '../../src/postgres.js';
import { openSqliteStore } from '../../src/sqlite.js';
import { collect, sleep } from '../helpers/collect.js';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';

const tick = (i: number) => ({ type: 'Tick', data: { i } });
const versions = async (store: EventStore, stream: string) => (await collect(store.read(stream))).map((e) => e.streamVersion);

/** Polls until `check` holds (another instance may learn of a change a little later: NATS). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}

interface Pair {
  one: EventStore;
  two: EventStore;
  dispose(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'logline-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pgReachable = await requirePostgres();
const natsReachable = await requireNats();

const backends: Array<{ name: string; skip: boolean; open(): Promise<Pair> }> = [
  {
    name: 'sqlite',
    skip: false,
    async open() {
      const path = join(dir, 'shared.db');
      const one = await openSqliteStore({ path, synchronous: 'normal' });
      const two = await openSqliteStore({ path, synchronous: 'normal' });
      return { one, two, dispose: async () => void (await Promise.all([one.close(), two.close()])) };
    },
  },
  {
    name: 'postgres',
    skip: !pgReachable,
    async open() {
      const fresh = await freshSchemaUrl();
      const one = await openPostgresStore({ url: fresh.url, poolSize: 2 });
      const two = await openPostgresStore({ url: fresh.url, poolSize: 2 });
      return {
        one,
        two,
        async dispose() {
          await Promise.all([one.close(), two.close()]);
          await fresh.drop();
        },
      };
    },
  },
  {
    name: 'nats',
    skip: !natsReachable,
    async open() {
      const fresh = freshNatsUrl();
      const one = await openNatsStore({ url: fresh.url });
      const two = await openNatsStore({ url: fresh.url });
      return {
        one,
        two,
        async dispose() {
          await Promise.all([one.close(), two.close()]);
          await fresh.drop();
        },
      };
    },
  },
];

describe.each(backends)('retention across two store instances: $name', ({ skip, open }) => {
  it.skipIf(skip)('settings, deletes and a scavenge by one instance hold in the other', async () => {
    const { one, two, dispose } = await open();
    try {
      for (let i = 1; i <= 4; i++) await one.append('shared-1', [tick(i)]);
      await one.append('other-1', [tick(0)]);
      expect(await versions(two, 'shared-1')).toEqual([1, 2, 3, 4]);
      await one.setStreamMetadata('shared-1', { maxCount: 2 });
      await eventually(async () => (await versions(two, 'shared-1')).join() === '3,4');
      await eventually(async () => (await collect(two.readAll())).length === 3);
      // The other instance's cached stream head must not let an append past a tombstone.
      await two.append('shared-1', [tick(5)]);
      await one.deleteStream('shared-1', { hard: true });
      await expect(two.append('shared-1', [tick(6)])).rejects.toBeInstanceOf(StreamDeletedError);
      expect((await two.getStreamMetadata('shared-1')).deleted).toBe('hard');
      // A newer event elsewhere, so that the scavenge may remove all of shared-1 (not the log's newest).
      await two.append('other-1', [tick(1)]);
      expect((await one.scavenge()).removed).toBeGreaterThan(0);
      expect(await two.streamVersion('shared-1')).toBe(5);
      expect(await versions(two, 'shared-1')).toEqual([]);
      expect((await collect(two.readAll())).map((e) => e.streamId)).toEqual(['other-1', 'other-1']);
      await expect(two.append('shared-1', [tick(7)])).rejects.toBeInstanceOf(StreamDeletedError);
    } finally {
      await dispose();
    }
  });
});
