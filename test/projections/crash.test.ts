/**
 * Exactly-once effects across crashes: a child process projects into SQL tables and is killed
 * with SIGKILL again and again mid-projection; afterwards the read model must match the log
 * exactly (no event lost, none counted twice), because each batch's writes and its checkpoint
 * commit in one transaction.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/sqlite.js';
import { sleep } from '../helpers/collect.js';
import { spawnChild } from './children.js';
import { crashLoop, KILLS } from './crash.js';
import { tempDir } from './stores.js';

const SUBSCRIBER = fileURLToPath(new URL('./fixtures/subscribing-child.ts', import.meta.url));

describe('crash safety on sqlite', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it(`keeps the read model exact across ${KILLS} kill -9s mid-projection`, { timeout: 90_000 }, async () => {
    const path = join(tmp.dir, 'crash.db');
    const store = await openSqliteStore({ path });
    const types = ['A', 'B', 'C'];
    for (let i = 0; i < 60; i++) {
      await store.append(
        `s-${i % 30}`,
        Array.from({ length: 50 }, (_, j) => ({ type: types[(i + j) % 3] as string, data: { i, j } })),
      );
    }
    await store.close();
    const head = 3000n;
    const reader = new BetterSqlite3(path, { readonly: true });
    const checkpoint = async () =>
      BigInt((reader.prepare("SELECT position FROM logline_checkpoints WHERE name = 'crashcount@v1'").pluck().get() as number) ?? 0);
    const afterKills = await crashLoop(`sqlite:${path}?synchronous=full`, checkpoint);
    // The kills landed mid-projection, not only before the start or after the end.
    expect(afterKills.some((p) => p > 0n && p < head)).toBe(true);
    expect(await checkpoint()).toBe(head);
    const expectedTypes = reader.prepare('SELECT type, count(*) FROM events GROUP BY type ORDER BY type').raw().all();
    expect(reader.prepare('SELECT type, n FROM type_counts ORDER BY type').raw().all()).toEqual(expectedTypes);
    const expectedStreams = reader
      .prepare('SELECT stream_id, count(*), max(stream_version) FROM events GROUP BY stream_id ORDER BY stream_id')
      .raw()
      .all();
    expect(reader.prepare('SELECT stream, n, last FROM stream_versions ORDER BY stream').raw().all()).toEqual(expectedStreams);
    reader.close();
  });

  it('a subscription killed with SIGKILL redelivers at most one batch, and misses nothing', { timeout: 90_000 }, async () => {
    const path = join(tmp.dir, 'subscription.db');
    const log = join(tmp.dir, 'mailer.log');
    writeFileSync(log, '');
    const store = await openSqliteStore({ path, synchronous: 'normal' });
    for (let i = 0; i < 10; i++)
      await store.append(
        `user-${i}`,
        Array.from({ length: 50 }, () => ({ type: 'Registered', data: {} })),
      );
    await store.close();
    const url = `sqlite:${path}?synchronous=normal`;
    const handled = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number);
    for (let kill = 0; kill < 3; kill++) {
      const { child, ready, exited } = spawnChild(SUBSCRIBER, [url, log]);
      await ready;
      const before = handled().length;
      while (handled().length < before + 40) await sleep(5);
      child.kill('SIGKILL');
      await exited;
    }
    const { exited } = spawnChild(SUBSCRIBER, [url, log, 'finish']);
    expect(await exited).toBe(0);
    const positions = handled();
    expect(new Set(positions).size).toBe(500);
    // Redelivery only after a kill, of at most one batch (10), in order: the sequence never
    // steps back by more than the batch size, and only three times (once per kill).
    let stepsBack = 0;
    for (let i = 1; i < positions.length; i++) {
      const a = positions[i - 1] as number;
      const b = positions[i] as number;
      if (b === a + 1) continue;
      stepsBack++;
      expect(b).toBeLessThanOrEqual(a);
      expect(a - b).toBeLessThan(10);
    }
    expect(stepsBack).toBeLessThanOrEqual(3);
    expect(positions.length - 500).toBeLessThanOrEqual(30);
  });
});
