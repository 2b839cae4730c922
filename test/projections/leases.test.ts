/**
 * What operators see of a consumer group: its leases (partition → owner, expiry) as each backend
 * stores them, and listConsumers naming each partition's owner.
 */
import { describe, expect, it } from 'vitest';
import { backendFor } from '../../src/projections/registry.js';
import { type GroupWorker, joinGroup, listConsumers, summarizeGroups } from '../../src/projections.js';
import { event, sleep } from '../helpers/collect.js';
import { backends, natsBackend, natsReachable } from './stores.js';

const PARTITIONS = 4;

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

for (const backend of [...backends, ...(natsReachable ? [natsBackend] : [])]) {
  describe(`group leases (${backend.name})`, () => {
    it('lists every partition of a group with the worker holding it', async () => {
      const { store, dispose } = await backend.open();
      const workers: GroupWorker[] = [];
      try {
        await store.append('order-1', [event('Placed')]);
        await store.append('order-2', [event('Placed')]);
        const join = (member: string, group = 'billing') =>
          joinGroup(store, { group, member, partitions: PARTITIONS, leaseMs: 2000, heartbeatMs: 50, handler: () => {} });
        workers.push(await join('worker-a'), await join('worker-b'), await join('worker-c', 'audit'));
        await until(() => workers[0]?.partitions.length === 2 && workers[1]?.partitions.length === 2, 5000, 'a balanced group');

        // The backend the workers use (one per store; the memory store's lives in it).
        const leasesOf = backendFor(store);
        const leases = await (await leasesOf).listLeases('billing');
        expect(leases.map((lease) => lease.partition)).toEqual([0, 1, 2, 3]);
        expect(leases.every((lease) => lease.group === 'billing' && lease.expiresAt > Date.now())).toBe(true);
        const ownerOf = new Map(leases.map((lease) => [lease.partition, lease.owner]));
        for (const worker of workers.slice(0, 2))
          for (const partition of worker.partitions) expect(ownerOf.get(partition)).toBe(worker.member);
        // Without a group: every group's leases, by group then partition.
        const all = await (await leasesOf).listLeases();
        expect(all.map((lease) => `${lease.group}#${lease.partition}:${lease.owner}`)).toEqual([
          ...[0, 1, 2, 3].map((p) => `audit#${p}:worker-c`),
          ...leases.map((lease) => `billing#${lease.partition}:${lease.owner}`),
        ]);

        // listConsumers names the owner of each partition once its checkpoint is stored.
        await until(
          async () => (await listConsumers(store)).filter((info) => info.group === 'billing').length === PARTITIONS,
          5000,
          'the checkpoints of every partition',
        );
        const [billing] = summarizeGroups(await listConsumers(store)).filter((group) => group.group === 'billing');
        expect(billing?.owners).toEqual(['worker-a', 'worker-b']);
        expect(billing?.partitions.map((p) => [p.partition, p.owner])).toEqual(leases.map((lease) => [lease.partition, lease.owner]));
        expect(billing?.lagPositions).toBe(0);

        // A worker that stops hands its leases back.
        await workers[1]?.stop();
        expect((await (await leasesOf).listLeases('billing')).some((lease) => lease.owner === 'worker-b')).toBe(false);
      } finally {
        await Promise.all(workers.map((worker) => worker.stop()));
        await dispose();
      }
    });
  });
}
