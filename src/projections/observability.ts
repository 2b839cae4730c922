/**
 * What the metrics endpoint and the admin page show: every subscription, projection version
 * and group partition with a stored checkpoint, the head, and the lag in positions and seconds.
 * Consumers running in other processes are listed too (from their checkpoints); those running
 * in this process add their live status. A group partition also names its lease owner.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore, RecordedEvent } from '../core/types.js';
import type { ConsumerKind, GroupLease, ParkedEvent, StoredCheckpoint } from './backend.js';
import type { ConsumerStatus } from './consumer.js';
import { backendFor, runningConsumers } from './registry.js';

export interface ConsumerInfo {
  /** Checkpoint name: a subscription's name, `projection@vN`, or `group#partition`. */
  name: string;
  kind: ConsumerKind;
  /** For projections: its name, the version of this checkpoint, and whether queries see that version. */
  projection?: string;
  version?: number;
  active?: boolean;
  /** For group partitions: the group, the partition, and the worker holding its lease (last holder if expired). */
  group?: string;
  partition?: number;
  owner?: string;
  /** When that lease ends unless renewed (ISO 8601); in the past, nobody works on the partition. */
  leaseExpiresAt?: string;
  /** Everything at or below this position is processed. */
  checkpoint: bigint;
  head: bigint;
  /** head − checkpoint (positions may have gaps, so this is an upper bound on unprocessed events). */
  lagPositions: number;
  /** Age of the oldest unprocessed event, 0 when caught up. */
  lagSeconds: number;
  /** Live status when it runs in this process, 'unknown' otherwise. */
  status: ConsumerStatus | 'unknown';
  lastError?: string;
  /** Parked (failed) events of this consumer. */
  parked: number;
  updatedAt: string;
}

async function oldestUnprocessed(store: EventStore, after: bigint): Promise<RecordedEvent | undefined> {
  for await (const event of store.readAll({ from: after, limit: 1 })) return event;
  return undefined;
}

async function describe(
  store: EventStore,
  checkpoint: StoredCheckpoint,
  head: bigint,
  actives: Map<string, number | undefined>,
  parked: ParkedEvent[],
  now: number,
  leases: Map<string, GroupLease> = new Map(),
): Promise<ConsumerInfo> {
  const running = runningConsumers(store).get(checkpoint.name);
  const position = running && running.position > checkpoint.position ? running.position : checkpoint.position;
  const info: ConsumerInfo = {
    name: checkpoint.name,
    kind: checkpoint.kind,
    checkpoint: position,
    head,
    lagPositions: Number(head > position ? head - position : 0n),
    lagSeconds: 0,
    status: running?.status ?? 'unknown',
    parked: parked.filter((p) => p.consumer === checkpoint.name || p.consumer === checkpoint.name.split('#')[0]).length,
    updatedAt: checkpoint.updatedAt,
  };
  if (running?.lastError !== undefined) info.lastError = String((running.lastError as Error)?.message ?? running.lastError);
  if (checkpoint.kind === 'projection') {
    const at = checkpoint.name.lastIndexOf('@v');
    info.projection = checkpoint.name.slice(0, at);
    info.version = Number(checkpoint.name.slice(at + 2));
    info.active = actives.get(info.projection) === info.version;
  }
  if (checkpoint.kind === 'group') {
    const at = checkpoint.name.lastIndexOf('#');
    info.group = checkpoint.name.slice(0, at);
    info.partition = Number(checkpoint.name.slice(at + 1));
    const lease = leases.get(checkpoint.name);
    if (lease) {
      info.owner = lease.owner;
      info.leaseExpiresAt = new Date(lease.expiresAt).toISOString();
    }
  }
  if (head > position) {
    const oldest = await oldestUnprocessed(store, position);
    if (oldest) info.lagSeconds = Math.max(0, (now - Date.parse(oldest.recordedAt)) / 1000);
  }
  return info;
}

/** Every consumer with a stored checkpoint on this store, with head and lag. */
export async function listConsumers(store: EventStore): Promise<ConsumerInfo[]> {
  const backend = await backendFor(store);
  const [checkpoints, head, parked, leases] = await Promise.all([
    backend.listCheckpoints(),
    store.headPosition(),
    backend.listParked(),
    backend.listLeases(),
  ]);
  const leaseOf = new Map(leases.map((lease) => [`${lease.group}#${lease.partition}`, lease]));
  const actives = new Map<string, number | undefined>();
  for (const checkpoint of checkpoints) {
    if (checkpoint.kind !== 'projection') continue;
    const projection = checkpoint.name.slice(0, checkpoint.name.lastIndexOf('@v'));
    if (!actives.has(projection)) actives.set(projection, await backend.activeVersion(projection));
  }
  const now = Date.now();
  const infos: ConsumerInfo[] = [];
  for (const checkpoint of checkpoints) infos.push(await describe(store, checkpoint, head, actives, parked, now, leaseOf));
  return infos;
}

export interface GroupInfo {
  group: string;
  /** Its partitions with a checkpoint, by partition number, each with its lease owner. */
  partitions: ConsumerInfo[];
  /** Workers holding an unexpired lease on one of them, sorted. */
  owners: string[];
  /** The lowest partition checkpoint, and the largest lags: how far behind the group is. */
  checkpoint: bigint;
  lagPositions: number;
  lagSeconds: number;
  parked: number;
}

/** Folds the group partitions of `listConsumers` into one entry per group (the admin page's group rows). */
export function summarizeGroups(consumers: ConsumerInfo[], now = Date.now()): GroupInfo[] {
  const groups = new Map<string, ConsumerInfo[]>();
  for (const info of consumers) {
    if (info.kind !== 'group' || info.group === undefined) continue;
    groups.set(info.group, [...(groups.get(info.group) ?? []), info]);
  }
  return [...groups].map(([group, partitions]) => {
    partitions.sort((a, b) => (a.partition as number) - (b.partition as number));
    const live = partitions.filter((p) => p.owner !== undefined && Date.parse(p.leaseExpiresAt as string) > now);
    return {
      group,
      partitions,
      owners: [...new Set(live.map((p) => p.owner as string))].sort(),
      checkpoint: partitions.reduce((min, p) => (p.checkpoint < min ? p.checkpoint : min), (partitions[0] as ConsumerInfo).checkpoint),
      lagPositions: Math.max(...partitions.map((p) => p.lagPositions)),
      lagSeconds: Math.max(...partitions.map((p) => p.lagSeconds)),
      // Every partition counts the group's parked events: count them once.
      parked: (partitions[0] as ConsumerInfo).parked,
    };
  });
}

/**
 * Lag of one consumer: a subscription name, a checkpoint name (`name@v2`, `group#3`), or a
 * projection name (its active version). Throws InvalidArgumentError for an unknown name.
 */
export async function getLag(store: EventStore, name: string): Promise<ConsumerInfo> {
  const backend = await backendFor(store);
  const checkpoints = await backend.listCheckpoints();
  let found = checkpoints.find((checkpoint) => checkpoint.name === name);
  if (!found) {
    const active = await backend.activeVersion(name);
    if (active !== undefined) found = checkpoints.find((checkpoint) => checkpoint.name === `${name}@v${active}`);
  }
  if (!found)
    throw new InvalidArgumentError('name', `no subscription, projection or group checkpoint named '${name}'`, 'a known consumer name');
  const group = found.kind === 'group' ? found.name.slice(0, found.name.lastIndexOf('#')) : undefined;
  const [head, parked, leases] = await Promise.all([
    store.headPosition(),
    backend.listParked(found.name.split('#')[0]),
    group === undefined ? [] : backend.listLeases(group),
  ]);
  const actives = new Map<string, number | undefined>();
  if (found.kind === 'projection') {
    const projection = found.name.slice(0, found.name.lastIndexOf('@v'));
    actives.set(projection, await backend.activeVersion(projection));
  }
  const leaseOf = new Map(leases.map((lease) => [`${lease.group}#${lease.partition}`, lease]));
  return describe(store, found, head, actives, parked, Date.now(), leaseOf);
}
