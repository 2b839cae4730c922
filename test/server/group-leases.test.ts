/**
 * GET /v1/subscriptions over real HTTP lists a consumer group as one entry with its partitions,
 * each with its checkpoint, lag and lease owner. The two workers run in this process on the
 * SQLite file the server opens on its own.
 */
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventStore, openStore } from '../../src/index.js';
import { type GroupWorker, joinGroup } from '../../src/projections.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { sleep } from '../helpers/collect.js';
import { get, tempDir } from './process.js';

describe('GET /v1/subscriptions: consumer groups with their partitions and lease owners', () => {
  const dir = tempDir('logline-group-leases-');
  let store: EventStore;
  let server: RunningServer;
  const workers: GroupWorker[] = [];

  beforeAll(async () => {
    const file = join(dir.path, 'leases.db');
    store = await openStore(`sqlite:${file}`);
    await store.append('parcel-1', [{ type: 'Shipped', data: {} }]);
    await store.append('parcel-2', [{ type: 'Shipped', data: {} }]);
    const joinAs = (member: string) =>
      joinGroup(store, { group: 'shipping', member, partitions: 4, leaseMs: 2000, heartbeatMs: 50, handler: () => {} });
    workers.push(await joinAs('worker-a'), await joinAs('worker-b'));
    for (const deadline = Date.now() + 5000; workers.some((w) => w.partitions.length !== 2); await sleep(20)) {
      if (Date.now() > deadline) throw new Error('the group did not balance');
    }
    server = await startServer({ store: `sqlite:${file}`, port: 0, logger: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await server?.close();
    await store?.close();
    dir.remove();
  });

  it('one entry per group, its partitions each naming the worker that holds the lease', async () => {
    const shipping = async () => {
      const { body } = await get(`${server.url}/v1/subscriptions`);
      return (body.subscriptions as Array<Record<string, unknown>>).find((s) => s.name === 'shipping');
    };
    // Checkpoints are saved after the first batch: wait until every partition has one.
    for (const deadline = Date.now() + 5000; ((await shipping())?.partitions as unknown[] | undefined)?.length !== 4; await sleep(50)) {
      if (Date.now() > deadline) throw new Error('the partitions did not all save a checkpoint');
    }
    const entry = (await shipping()) as Record<string, unknown>;
    expect(entry).toMatchObject({ kind: 'group', target: 'shipping', owners: ['worker-a', 'worker-b'], lag: '0' });
    const partitions = entry.partitions as Array<Record<string, unknown>>;
    expect(partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    for (const worker of workers) {
      expect(partitions.filter((p) => p.owner === worker.member).map((p) => p.partition)).toEqual(worker.partitions);
    }
    for (const p of partitions) {
      expect(p).toMatchObject({ name: `shipping#${p.partition}`, position: expect.stringMatching(/^\d+$/), lag: '0' });
      expect(Date.parse(p.leaseExpiresAt as string)).toBeGreaterThan(Date.now());
    }
    // One partition on its own, with its owner.
    const one = await get(`${server.url}/v1/subscriptions/shipping%230`);
    expect(one.body).toMatchObject({ name: 'shipping#0', kind: 'group', group: 'shipping', partition: 0, owner: partitions[0]?.owner });
    // Partitions are no longer separate entries: the group's is the only one.
    const { body } = await get(`${server.url}/v1/subscriptions`);
    expect((body.subscriptions as Array<{ name: string }>).filter((s) => s.name.startsWith('shipping'))).toHaveLength(1);
  });
});
