/**
 * A batch of events a projection does not handle only moves its checkpoint: the position queries
 * wait on moves at once, the stored checkpoint within a second (not in a transaction per batch),
 * a batch with work saves a later one, and stop saves what is pending. The stored checkpoint is
 * read through a second store instance, which sees the database and nothing of this process.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { listConsumers, startProjection, waitForPosition } from '../../src/projections.js';
import { event, sleep } from '../helpers/collect.js';
import { processBackends, tempDir } from './stores.js';

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe.each(processBackends('skipped.db'))('checkpoints of ignored events ($name)', (backend) => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('move the position at once and the stored checkpoint within a second; a batch with work or a stop saves them', async () => {
    const { url, store, dispose } = await backend.open(tmp.dir);
    const other = await openStore(url);
    const stored = async () => (await listConsumers(other)).find((c) => c.name === 'counted@v1')?.checkpoint;
    const handled: bigint[] = [];
    const projection = await startProjection(store, {
      name: 'counted',
      version: 1,
      tables: [],
      handlers: { Counted: (e) => void handled.push(e.position) },
    });
    try {
      const first = (await store.append('c-1', [event('Counted')])).position;
      await waitForPosition(projection, first, { timeout: 5000 });
      // A batch with work saves its checkpoint in its own transaction.
      expect(await stored()).toBe(first);

      const appended = Date.now();
      const last = (await store.append('o-1', [event('Other'), event('Other'), event('Other')])).position;
      await waitForPosition(projection, last, { timeout: 5000 });
      // Waiters see it at once; the database does not yet: no transaction per ignored batch. (On a
      // machine so busy that this took most of the second, the timed save may have run already.)
      const early = await stored();
      if (Date.now() - appended < 800) expect(early).toBe(first);
      await until(async () => (await stored()) === last, 5000, 'the ignored events checkpointed');
      expect(Date.now() - appended).toBeLessThan(3000);

      // Ignored events followed by one with work: that batch's checkpoint covers them at once.
      await store.append('o-6', [event('Other')]);
      const worked = (await store.append('c-2', [event('Counted')])).position;
      await waitForPosition(projection, worked, { timeout: 5000 });
      expect(await stored()).toBe(worked);

      // Stopping saves what is pending, without waiting for the timer.
      const stopping = Date.now();
      const pending = (await store.append('o-7', [event('Other')])).position;
      await waitForPosition(projection, pending, { timeout: 5000 });
      const before = await stored();
      if (Date.now() - stopping < 800) expect(before).toBe(worked);
      await projection.stop();
      expect(await stored()).toBe(pending);
      expect(handled).toEqual([first, worked]);
    } finally {
      await projection.stop();
      await other.close();
      await dispose();
    }
  });
});
