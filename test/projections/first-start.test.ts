/**
 * Two processes start the same projections for the first time at the same moment (issue 10,
 * item 12): both must succeed (both run; the checkpoint lock keeps effects exactly once).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/index.js';
import { openPostgresStore } from '../../src/postgres.js';
import { openSqliteStore } from '../../src/sqlite.js';
import { event } from '../helpers/collect.js';
import { freshSchemaUrl } from '../helpers/postgres.js';
import { onLines } from '../helpers/process.js';
import { spawnChild } from './children.js';
import { postgresReachable, tempDir } from './stores.js';

const CHILD = fileURLToPath(new URL('./fixtures/first-start-child.ts', import.meta.url));
const PROJECTIONS = 10;

/** Two children start PROJECTIONS projections each on signal; returns each child's failures. */
async function raceFirstStarts(url: string): Promise<string[][]> {
  const children = [spawnChild(CHILD, [url, String(PROJECTIONS)]), spawnChild(CHILD, [url, String(PROJECTIONS)])];
  const reports = children.map(
    ({ child }) =>
      new Promise<string[]>((resolve) =>
        onLines(child, (line) => {
          if (line.startsWith('{')) resolve((JSON.parse(line) as { failures: string[] }).failures);
        }),
      ),
  );
  await Promise.all(children.map((c) => c.ready));
  for (const { child } of children) child.kill('SIGUSR2');
  const failures = await Promise.all(reports);
  expect(await Promise.all(children.map((c) => c.exited))).toEqual([0, 0]);
  return failures;
}

async function seed(store: EventStore): Promise<void> {
  await store.append('s-1', [event('A'), event('A'), event('B')]);
  await store.append('s-2', [event('A')]);
}

describe('first start of a projection in two processes at once', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('sqlite: both processes start every projection; each counts every event once', async () => {
    const path = join(tmp.dir, 'first.db');
    const store = await openSqliteStore({ path });
    await seed(store);
    expect(await raceFirstStarts(`sqlite:${path}`)).toEqual([[], []]);
    for (let i = 0; i < PROJECTIONS; i++) {
      expect(store.database.prepare(`SELECT type, n FROM first${i}_counts`).raw().all()).toEqual([['A', 3]]);
    }
    await store.close();
  }, 30_000);

  it.skipIf(!postgresReachable)(
    'postgres: both processes start every projection; each counts every event once',
    async () => {
      const fresh = await freshSchemaUrl();
      const store = await openPostgresStore({ url: fresh.url });
      try {
        await seed(store);
        expect(await raceFirstStarts(fresh.url)).toEqual([[], []]);
        for (let i = 0; i < PROJECTIONS; i++) {
          expect(await store.sql.unsafe(`SELECT type, n FROM ${store.schema}.first${i}_counts`).values()).toEqual([['A', 3]]);
        }
      } finally {
        await store.close();
        await fresh.drop();
      }
    },
    30_000,
  );
});
