/**
 * What the metrics endpoint and the admin page show: every subscription, projection version
 * and group partition with a stored checkpoint, the head, and the lag in positions and seconds.
 * Consumers running in other processes are listed too (from their checkpoints); those running
 * in this process add their live status.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore, RecordedEvent } from '../core/types.js';
import type { ConsumerKind, ParkedEvent, StoredCheckpoint } from './backend.js';
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
  if (head > position) {
    const oldest = await oldestUnprocessed(store, position);
    if (oldest) info.lagSeconds = Math.max(0, (now - Date.parse(oldest.recordedAt)) / 1000);
  }
  return info;
}

/** Every consumer with a stored checkpoint on this store, with head and lag. */
export async function listConsumers(store: EventStore): Promise<ConsumerInfo[]> {
  const backend = await backendFor(store);
  const [checkpoints, head, parked] = await Promise.all([backend.listCheckpoints(), store.headPosition(), backend.listParked()]);
  const actives = new Map<string, number | undefined>();
  for (const checkpoint of checkpoints) {
    if (checkpoint.kind !== 'projection') continue;
    const projection = checkpoint.name.slice(0, checkpoint.name.lastIndexOf('@v'));
    if (!actives.has(projection)) actives.set(projection, await backend.activeVersion(projection));
  }
  const now = Date.now();
  const infos: ConsumerInfo[] = [];
  for (const checkpoint of checkpoints) infos.push(await describe(store, checkpoint, head, actives, parked, now));
  return infos;
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
  const [head, parked] = await Promise.all([store.headPosition(), backend.listParked(found.name.split('#')[0])]);
  const actives = new Map<string, number | undefined>();
  if (found.kind === 'projection') {
    const projection = found.name.slice(0, found.name.lastIndexOf('@v'));
    actives.set(projection, await backend.activeVersion(projection));
  }
  return describe(store, found, head, actives, parked, Date.now());
}
