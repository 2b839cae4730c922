/** The kill -9 loop shared by the SQLite and PostgreSQL crash tests. */
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { sleep } from '../helpers/collect.js';
import { spawnChild } from './children.js';

const CHILD = fileURLToPath(new URL('./fixtures/projecting-child.ts', import.meta.url));
export const KILLS = 8;

/**
 * Kills a projecting child KILLS times, each soon after it has committed progress (so the kill
 * lands mid-projection), then lets one finish. Returns the checkpoints seen after the kills.
 */
export async function crashLoop(url: string, checkpoint: () => Promise<bigint>): Promise<bigint[]> {
  const afterKills: bigint[] = [];
  for (let i = 0; i < KILLS; i++) {
    const { child, ready, exited } = spawnChild(CHILD, [url]);
    await ready;
    const start = await checkpoint();
    const deadline = Date.now() + 5000;
    while ((await checkpoint()) === start && Date.now() < deadline) await sleep(2);
    await sleep(Math.random() * 120);
    child.kill('SIGKILL');
    await exited;
    afterKills.push(await checkpoint());
  }
  const { exited } = spawnChild(CHILD, [url, 'finish']);
  expect(await exited).toBe(0);
  return afterKills;
}
