/** Several processes on one SQLite file: concurrency control and live delivery across processes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../src/sqlite.js';
import { collect, take } from '../../helpers/collect.js';
import { runTs, spawnTs } from '../../helpers/process.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-mp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const child = (name: string) => join(import.meta.dirname, 'children', name);

describe('sqlite: several processes on one file', () => {
  it('lets exactly one process win each race, and the file stays consistent', async () => {
    const file = join(dir, 'race.db');
    const rounds = 40;
    const outputs = await Promise.all(['a', 'b', 'c', 'd'].map((who) => runTs(child('race-writer.ts'), [file, String(rounds), who])));
    const results = outputs.map((out) => JSON.parse(out.trim()) as { won: number[]; sharedWins: number });

    // Each race-<round> stream was created by exactly one process.
    const winners = results.flatMap((r) => r.won).sort((a, b) => a - b);
    expect(winners).toEqual(Array.from({ length: rounds }, (_, i) => i));

    const store = await openSqliteStore({ path: file });
    for (let round = 0; round < rounds; round++) expect(await store.streamVersion(`race-${round}`)).toBe(1);
    // Every successful append to 'shared' added exactly two events, versions contiguous.
    const shared = await collect(store.read('shared'));
    const sharedWins = results.reduce((n, r) => n + r.sharedWins, 0);
    expect(shared).toHaveLength(sharedWins * 2);
    expect(shared.map((e) => e.streamVersion)).toEqual(shared.map((_, i) => i + 1));
    // Each winner's first event records the version it expected: the version before it.
    for (const e of shared.filter((e) => e.type === 'Bumped')) expect((e.data as { from: number }).from).toBe(e.streamVersion - 1);
    await store.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  }, 60_000);

  it('delivers events appended by another process to a live subscriber', async () => {
    const file = join(dir, 'live.db');
    const store = await openSqliteStore({ path: file });
    await store.append('here', [{ type: 'Local', data: {} }]);
    const received = take(store.subscribe(), 21, 20_000);
    const writer = spawnTs(child('appender.ts'), [file, 'there', '20', '10']);
    const events = await received;
    writer.kill();
    expect(events.map((e) => e.streamId)).toEqual(['here', ...Array(20).fill('there')]);
    expect(events.slice(1).map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await store.close();
  }, 30_000);
});
