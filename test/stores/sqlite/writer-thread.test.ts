/**
 * The SQLite writer thread (src/stores/sqlite/writer-thread.ts): coalesced batches are written
 * off the event loop, so a commit that waits (for the disk, or for another connection's write
 * lock) leaves this thread serving. A single caller's lone append, and every append while an
 * inline hook is attached, is written on this thread; a lone append goes to the thread while
 * several callers append, or when another connection holds the write lock. Waiting for another
 * connection's write lock makes "which thread waits" observable: timer ticks run meanwhile, or
 * not; `data_version` tells which connection committed.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../src/index.js';
import { openSqliteStore } from '../../../src/sqlite.js';
import { collect } from '../../helpers/collect.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-writer-thread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `w-${files++}.db`);

/** Counts 10 ms timer ticks until `until` settles: how often the event loop got to run meanwhile. */
async function ticksWhile(until: Promise<unknown>): Promise<number> {
  let ticks = 0;
  let done = false;
  void until.finally(() => {
    done = true;
  });
  while (!done) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    ticks++;
  }
  return ticks;
}

describe('sqlite writer thread', () => {
  it('a coalesced batch waiting for another connection’s write lock leaves the event loop running, then commits', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file, busyTimeoutMs: 5000 });
    await store.append('s', [{ type: 'Before', data: {} }]);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    // Two appends in one turn: one batch, for the thread.
    const appends = Promise.all([
      store.append('s', [{ type: 'Waited', data: {} }], { expectedVersion: 1 }),
      store.append('s', [{ type: 'AlsoWaited', data: {} }], { expectedVersion: 2 }),
    ]);
    // Released from a timer on this thread: only possible if the waiting batch does not block it.
    setTimeout(() => other.exec('COMMIT'), 300);
    const ticks = await ticksWhile(appends);
    expect((await appends).map((r) => r.streamVersion)).toEqual([2, 3]);
    // ~30 ticks of 10 ms in 300 ms; a blocked loop would give none before the lock is released.
    expect(ticks).toBeGreaterThan(10);
    other.close();
    expect((await collect(store.read('s'))).map((e) => e.type)).toEqual(['Before', 'Waited', 'AlsoWaited']);
    await store.close();
  });

  it('a single caller’s appends are written on the store’s own connection, several callers’ in the thread', async () => {
    const store = await openSqliteStore({ path: freshFile() });
    await store.append('s', [{ type: 'Before', data: {} }]);
    // data_version changes when another connection (the writer thread's) commits, never for the
    // connection's own commits.
    const dataVersion = () => store.database.pragma('data_version', { simple: true });
    const before = dataVersion();
    await store.append('s', [{ type: 'Alone', data: {} }]);
    expect(dataVersion()).toBe(before);
    await Promise.all([store.append('s', [{ type: 'One', data: {} }]), store.append('s', [{ type: 'Two', data: {} }])]);
    const afterBatch = dataVersion();
    expect(afterBatch).not.toBe(before);
    // Appends just overlapped: there are several callers, and a batch of one is only the gap
    // between their arrivals. Its commit (an fsync) would hold all of them up here: the thread.
    await store.append('s', [{ type: 'Gap', data: {} }]);
    expect(dataVersion()).not.toBe(afterBatch);
    // A second later without overlaps, a single caller is back: written here again.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const quiet = dataVersion();
    await store.append('s', [{ type: 'AloneAgain', data: {} }]);
    expect(dataVersion()).toBe(quiet);
    expect((await collect(store.read('s'))).map((e) => e.type)).toEqual(['Before', 'Alone', 'One', 'Two', 'Gap', 'AloneAgain']);
    await store.close();
  });

  it('a lone append that finds the write lock taken waits for it in the thread, not on the event loop', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file, busyTimeoutMs: 5000 });
    await store.append('s', [{ type: 'Before', data: {} }]);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const appended = store.append('s', [{ type: 'Waited', data: {} }], { expectedVersion: 1 });
    // Released from a timer on this thread: only possible if the waiting append does not block it.
    setTimeout(() => other.exec('COMMIT'), 300);
    expect(await ticksWhile(appended)).toBeGreaterThan(10);
    expect(await appended).toMatchObject({ streamVersion: 2 });
    other.close();
    expect((await collect(store.read('s'))).map((e) => e.type)).toEqual(['Before', 'Waited']);
    await store.close();
  });

  it('many concurrent appends to one stream share one commit in the thread, in call order, each checked on its own', async () => {
    const store = await openSqliteStore({ path: freshFile() });
    await store.append('hot', [{ type: 'Before', data: {} }]);
    // Expected versions 1, 2, 2 (stale: fails alone), 3, then 'any'.
    const expected = [1, 2, 2, 3, 'any'] as const;
    const answers = await Promise.allSettled(
      expected.map((v, i) => store.append('hot', [{ type: `E${i}`, data: {} }], { expectedVersion: v })),
    );
    expect(answers.map((a) => (a.status === 'fulfilled' ? a.value.streamVersion : 'conflict'))).toEqual([2, 3, 'conflict', 4, 5]);
    const events = await collect(store.read('hot'));
    expect(events.map((e) => e.type)).toEqual(['Before', 'E0', 'E1', 'E3', 'E4']);
    // One transaction stamps one recordedAt.
    expect(new Set(events.slice(1).map((e) => e.recordedAt)).size).toBe(1);
    await store.close();
  });

  it('reads on the store’s own connection see every acknowledged append at once', async () => {
    const store = await openSqliteStore({ path: freshFile() });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.append(`r-${i % 7}`, [{ type: 'E', data: { i } }])));
    const head = results.reduce((max, r) => (r.position > max ? r.position : max), 0n);
    expect(await store.headPosition()).toBe(head);
    expect((await store.stats()).events).toBe(200);
    await store.close();
  });

  it('writes on the calling thread while an inline hook is attached, and in the thread again after it detaches', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file, busyTimeoutMs: 300 });
    const seen: string[] = [];
    const detach = store.addInlineHook((_db, events) => {
      for (const event of events) seen.push(event.type);
    });
    await Promise.all([store.append('h', [{ type: 'A', data: {} }]), store.append('h', [{ type: 'B', data: {} }])]);
    expect(seen).toEqual(['A', 'B']);
    // With the hook attached a blocked batch holds this thread: no tick runs until it gives up.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const blocked = Promise.all([
      store.append('h', [{ type: 'Blocked', data: {} }]),
      store.append('h', [{ type: 'Blocked', data: {} }]),
    ]).catch((error: unknown) => error);
    expect(await ticksWhile(blocked)).toBeLessThanOrEqual(1);
    detach();
    const waited = Promise.all([store.append('h', [{ type: 'C', data: {} }]), store.append('h', [{ type: 'D', data: {} }])]);
    setTimeout(() => other.exec('COMMIT'), 100);
    expect(await ticksWhile(waited)).toBeGreaterThan(3);
    other.close();
    expect(seen).toEqual(['A', 'B']);
    expect((await collect(store.read('h'))).map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
    await store.close();
  });

  it('a writer thread that dies leaves true answers, and later appends write on the calling thread', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    await store.append('d', [{ type: 'Before', data: {} }]);
    // The thread starts with the first batch and opens the file by its path: a directory there
    // now makes it fail to open (the store's own connection keeps the file it opened).
    renameSync(file, `${file}.moved`);
    mkdirSync(file);
    const lost = await Promise.allSettled([
      store.append('d', [{ type: 'Lost', data: {} }]),
      store.append('d', [{ type: 'Lost', data: {} }]),
    ]);
    expect(lost.map((a) => a.status)).toEqual(['rejected', 'rejected']);
    for (const answer of lost) {
      expect((answer as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
      expect((answer as PromiseRejectedResult).reason.message).toMatch(/writer thread stopped/);
    }
    // Nothing of the failed batch is stored; the next batch is written here and succeeds.
    const after = await Promise.all([store.append('d', [{ type: 'After', data: {} }]), store.append('d', [{ type: 'After', data: {} }])]);
    expect(after.map((r) => r.streamVersion)).toEqual([2, 3]);
    expect((await collect(store.read('d'))).map((e) => e.type)).toEqual(['Before', 'After', 'After']);
    await store.close();
  });

  it('writerThread: false writes on the calling thread (a waiting append blocks it)', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file, busyTimeoutMs: 300, writerThread: false });
    await store.append('s', [{ type: 'Before', data: {} }]);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const blocked = Promise.all([
      store.append('s', [{ type: 'Blocked', data: {} }]),
      store.append('s', [{ type: 'Blocked', data: {} }]),
    ]).catch((error: unknown) => error);
    expect(await ticksWhile(blocked)).toBeLessThanOrEqual(1);
    other.exec('ROLLBACK');
    other.close();
    expect((await collect(store.read('s'))).map((e) => e.type)).toEqual(['Before']);
    await store.close();
  });
});
