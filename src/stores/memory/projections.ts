/**
 * Projection state for the memory store: maps that live as long as the store object. There is
 * no transaction to roll back, so a handler that fails halfway keeps what it did: memory
 * projections are at-least-once, like subscriptions.
 */
import {
  byGroupAndPartition,
  type CheckpointUpdate,
  errorMessage,
  errorStack,
  type GroupLease,
  isThenable,
  type LeaseRow,
  type ParkedEvent,
  type ParkInput,
  type ProjectionBackend,
  planLeases,
  type StoredCheckpoint,
  SupersededError,
  type TransactOptions,
} from '../../projections/backend.js';

export function createMemoryBackend(): ProjectionBackend {
  const checkpoints = new Map<string, StoredCheckpoint>();
  const parked = new Map<number, ParkedEvent>();
  const versions = new Map<string, Set<number>>();
  const active = new Map<string, number>();
  const leases = new Map<string, Map<number, LeaseRow>>();
  const members = new Map<string, Map<string, number>>();
  let parkedIds = 0;

  const save = (update: CheckpointUpdate) => {
    const current = checkpoints.get(update.name);
    if (current && current.position >= update.position) return;
    checkpoints.set(update.name, { ...update, updatedAt: new Date().toISOString() });
  };

  return {
    kind: 'memory',
    transactional: false,
    qualify: (table) => table,
    async readCheckpoint(name) {
      return checkpoints.get(name)?.position;
    },
    async listCheckpoints() {
      return [...checkpoints.values()].map((c) => ({ ...c }));
    },
    async saveCheckpoint(update) {
      save(update);
    },
    async deleteCheckpoint(name) {
      checkpoints.delete(name);
    },
    async transact(work, options: TransactOptions) {
      if (options.guard) {
        const current = active.get(options.guard.projection);
        if (current !== undefined && current > options.guard.version) throw new SupersededError(options.guard.projection, current);
      }
      const result = work(undefined, options.checkpoint ? checkpoints.get(options.checkpoint.name)?.position : undefined);
      if (isThenable(result)) await result;
      if (options.checkpoint) save(options.checkpoint);
      if (options.deleteParked !== undefined) parked.delete(options.deleteParked);
    },
    async park(input: ParkInput, advance?: CheckpointUpdate) {
      const id = ++parkedIds;
      parked.set(id, {
        id,
        consumer: input.consumer,
        position: input.event.position,
        event: structuredClone(input.event),
        error: errorMessage(input.error),
        stack: errorStack(input.error),
        attempts: input.attempts,
        parkedAt: new Date().toISOString(),
      });
      if (advance) save(advance);
    },
    async listParked(consumer) {
      return [...parked.values()].filter((p) => consumer === undefined || p.consumer === consumer).map((p) => structuredClone(p));
    },
    async deleteParked(id) {
      parked.delete(id);
    },
    async activeVersion(projection) {
      return active.get(projection);
    },
    async prepareVersion(projection, version, _tables, setup) {
      const known = versions.get(projection) ?? new Set<number>();
      versions.set(projection, known);
      if (known.has(version)) return false;
      const result = setup(undefined);
      if (isThenable(result)) await result;
      known.add(version);
      return true;
    },
    async activate(projection, version) {
      const previous = active.get(projection);
      if (previous !== undefined && previous > version) throw new SupersededError(projection, previous);
      active.set(projection, version);
      return previous;
    },
    async dropVersion(projection, version) {
      versions.get(projection)?.delete(version);
      checkpoints.delete(`${projection}@v${version}`);
    },
    async balanceLeases(group, member, partitions, ttlMs, now) {
      const groupMembers = members.get(group) ?? new Map<string, number>();
      members.set(group, groupMembers);
      groupMembers.set(member, now + ttlMs);
      const live = [...groupMembers].filter(([, expiresAt]) => expiresAt > now).map(([name]) => name);
      const groupLeases = leases.get(group) ?? new Map<number, LeaseRow>();
      leases.set(group, groupLeases);
      const plan = planLeases([...groupLeases.values()], live, member, partitions, now);
      for (const partition of [...plan.keep, ...plan.claim, ...plan.release]) {
        groupLeases.set(partition, { partition, owner: member, expiresAt: now + ttlMs });
      }
      return { owned: [...plan.keep, ...plan.claim].sort((a, b) => a - b), surplus: plan.release };
    },
    async releaseLeases(group, member, partitions) {
      const groupLeases = leases.get(group);
      for (const partition of partitions) if (groupLeases?.get(partition)?.owner === member) groupLeases.delete(partition);
    },
    async saveGroupCheckpoints(group, member, partitions, position, now) {
      const groupLeases = leases.get(group);
      const held = partitions.filter((p) => {
        const lease = groupLeases?.get(p);
        return lease !== undefined && lease.owner === member && lease.expiresAt > now;
      });
      for (const partition of held) save({ name: `${group}#${partition}`, kind: 'group', position });
      return held;
    },
    async leaveGroup(group, member) {
      members.get(group)?.delete(member);
      const groupLeases = leases.get(group);
      for (const [partition, lease] of groupLeases ?? []) if (lease.owner === member) groupLeases?.delete(partition);
    },
    async listLeases(group) {
      const rows: GroupLease[] = [];
      for (const [name, groupLeases] of leases) {
        if (group === undefined || name === group) for (const lease of groupLeases.values()) rows.push({ group: name, ...lease });
      }
      return rows.sort(byGroupAndPartition);
    },
  };
}
