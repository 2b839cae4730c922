/**
 * Projection state for the NATS store: checkpoints, projection versions, parked events and
 * consumer-group leases, each a small JSON document on its own subject of the store's
 * `<NAME>_PROJECTIONS` stream (one message kept per subject, like a KV bucket). Documents are
 * changed by compare-and-set: a write carries `Nats-Expected-Last-Subject-Sequence` of the
 * version it read, and a refused write reads again and re-applies the change. So two group
 * members never both win a lease, and a checkpoint never moves backwards.
 *
 * There is no transaction spanning a handler's effects and the checkpoint, so subscriptions,
 * groups and projections on NATS deliver at-least-once (like the memory store). For exactly-once
 * SQL read models, keep the read model and its checkpoint in SQLite or PostgreSQL: pass that
 * store as `readModel` to startProjection (docs/nats.md).
 */
import { randomUUID } from 'node:crypto';
import type { StoredMsg } from '@nats-io/jetstream';
import {
  byGroupAndPartition,
  type CheckpointUpdate,
  errorMessage,
  errorStack,
  eventFromJson,
  eventToJson,
  isThenable,
  type LeaseRow,
  type ParkedEvent,
  type ProjectionBackend,
  planLeases,
  type StoredCheckpoint,
  SupersededError,
} from '../../projections/backend.js';
import { decodeToken, encodeToken } from './schema.js';
import type { NatsEventStore } from './store.js';

interface Doc<T> {
  value: T;
  seq: number;
}

interface VersionsDoc {
  active?: number;
  versions: Array<{ version: number; tables: string[] }>;
}

interface GroupDoc {
  leases: LeaseRow[];
  /** member → expiry (ms since the epoch) */
  members: Record<string, number>;
}

/** A checkpoint as stored: the position as a decimal string (JSON has no bigint). */
type CheckpointDoc = Omit<StoredCheckpoint, 'position'> & { position: string };

interface ParkedDoc {
  consumer: string;
  event: string;
  error: string;
  stack: string;
  attempts: number;
  parkedAt: string;
}

const isWrongLastSequence = (error: unknown): boolean =>
  (error as { code?: unknown })?.code === 10071 || /wrong last sequence/i.test(String((error as Error)?.message));
const isMessageNotFound = (error: unknown): boolean =>
  (error as { code?: unknown })?.code === 10037 || /no message found/i.test(String((error as Error)?.message));

export function createNatsBackend(store: NatsEventStore): ProjectionBackend {
  const { jetstream: js, manager: jsm, layout } = store;
  const stream = layout.projections;
  const root = `${layout.prefix}_proj`;
  const subject = (kind: string, key: string) => `${root}.${kind}.${encodeToken(key)}`;

  const read = async <T>(key: string): Promise<Doc<T> | undefined> => {
    let found: StoredMsg | null;
    try {
      found = await jsm.streams.getMessage(stream, { last_by_subj: key });
    } catch (error) {
      if (isMessageNotFound(error)) return undefined;
      throw error;
    }
    if (!found || found.data.length === 0) return undefined;
    return { value: found.json<T>(), seq: found.seq };
  };

  /**
   * Compare-and-set: `change` gets the current value (undefined if none) and returns the new one,
   * or undefined to leave it; a concurrent writer makes it run again on the newer value.
   */
  const update = async <T, R = void>(key: string, change: (current: T | undefined) => { next?: T; result: R }): Promise<R> => {
    for (;;) {
      const current = await read<T>(key);
      const { next, result } = change(current?.value);
      if (next === undefined) return result;
      try {
        await js.publish(key, JSON.stringify(next), { expect: { lastSubjectSequence: current?.seq ?? 0 } });
        return result;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
  };

  const remove = async (key: string) => {
    await jsm.streams.purge(stream, { filter: key });
  };

  /** The keys under `kind` (from the stream's per-subject counts). */
  const keys = async (kind: string): Promise<string[]> => {
    const info = await jsm.streams.info(stream, { subjects_filter: `${root}.${kind}.>` });
    return Object.keys(info.state.subjects ?? {}).sort();
  };

  const saveCheckpoint = (update_: CheckpointUpdate) =>
    update<CheckpointDoc>(subject('cp', update_.name), (current) => {
      if (current && BigInt(current.position) >= update_.position) return { result: undefined };
      return {
        next: { name: update_.name, kind: update_.kind, position: String(update_.position), updatedAt: new Date().toISOString() },
        result: undefined,
      };
    });

  const readCheckpoint = async (name: string) => {
    const doc = await read<CheckpointDoc>(subject('cp', name));
    return doc ? BigInt(doc.value.position) : undefined;
  };

  const activeVersion = async (projection: string) => (await read<VersionsDoc>(subject('ver', projection)))?.value.active;

  const toParked = (seq: number, doc: ParkedDoc): ParkedEvent => {
    const event = eventFromJson(doc.event);
    return {
      id: seq,
      consumer: doc.consumer,
      position: event.position,
      event,
      error: doc.error,
      stack: doc.stack,
      attempts: doc.attempts,
      parkedAt: doc.parkedAt,
    };
  };

  const updateGroup = <R>(group: string, change: (doc: GroupDoc) => R) =>
    update<GroupDoc, R>(subject('grp', group), (current) => {
      const doc: GroupDoc = current ?? { leases: [], members: {} };
      const result = change(doc);
      return { next: doc, result };
    });

  return {
    kind: 'nats',
    transactional: false,
    qualify: (table) => table,
    readCheckpoint,
    async listCheckpoints() {
      const found = await Promise.all((await keys('cp')).map((key) => read<CheckpointDoc>(key)));
      return found
        .flatMap((doc) => (doc ? [{ ...doc.value, position: BigInt(doc.value.position) }] : []))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
    },
    saveCheckpoint,
    async deleteCheckpoint(name) {
      await remove(subject('cp', name));
    },
    async transact(work, options) {
      if (options.guard) {
        const active = await activeVersion(options.guard.projection);
        if (active !== undefined && active > options.guard.version) throw new SupersededError(options.guard.projection, active);
      }
      const stored = options.checkpoint ? await readCheckpoint(options.checkpoint.name) : undefined;
      const result = work(undefined, stored);
      if (isThenable(result)) await result;
      if (options.checkpoint) await saveCheckpoint(options.checkpoint);
      if (options.deleteParked !== undefined) await jsm.streams.deleteMessage(stream, options.deleteParked, false).catch(() => {});
    },
    async park(input, advance) {
      const doc: ParkedDoc = {
        consumer: input.consumer,
        event: eventToJson(input.event),
        error: errorMessage(input.error),
        stack: errorStack(input.error),
        attempts: input.attempts,
        parkedAt: new Date().toISOString(),
      };
      await js.publish(`${root}.park.${randomUUID()}`, JSON.stringify(doc));
      if (advance) await saveCheckpoint(advance);
    },
    async listParked(consumer) {
      const out: ParkedEvent[] = [];
      for (const key of await keys('park')) {
        let found: StoredMsg | null = null;
        try {
          found = await jsm.streams.getMessage(stream, { last_by_subj: key });
        } catch (error) {
          if (!isMessageNotFound(error)) throw error;
        }
        if (!found) continue;
        const parked = toParked(found.seq, found.json<ParkedDoc>());
        if (consumer === undefined || parked.consumer === consumer) out.push(parked);
      }
      return out.sort((a, b) => a.id - b.id);
    },
    async deleteParked(id) {
      await jsm.streams.deleteMessage(stream, id, false).catch((error) => {
        if (!isMessageNotFound(error)) throw error;
      });
    },
    activeVersion,
    async prepareVersion(projection, version, tables, setup) {
      const known = (await read<VersionsDoc>(subject('ver', projection)))?.value.versions.some((v) => v.version === version);
      if (known) return false;
      // No tables to create on NATS; setup still runs once, for state kept elsewhere.
      const result = setup(undefined);
      if (isThenable(result)) await result;
      return update<VersionsDoc, boolean>(subject('ver', projection), (current) => {
        const doc = current ?? { versions: [] };
        if (doc.versions.some((v) => v.version === version)) return { result: false };
        return { next: { ...doc, versions: [...doc.versions, { version, tables }] }, result: true };
      });
    },
    async activate(projection, version) {
      return update<VersionsDoc, number | undefined>(subject('ver', projection), (current) => {
        const doc = current ?? { versions: [] };
        return { next: { ...doc, active: version }, result: doc.active };
      });
    },
    async dropVersion(projection, version) {
      await update<VersionsDoc>(subject('ver', projection), (current) =>
        current
          ? { next: { ...current, versions: current.versions.filter((v) => v.version !== version) }, result: undefined }
          : { result: undefined },
      );
      await remove(subject('cp', `${projection}@v${version}`));
    },
    async balanceLeases(group, member, partitions, ttlMs, now) {
      return updateGroup(group, (doc) => {
        doc.members[member] = now + ttlMs;
        for (const [name, expires] of Object.entries(doc.members)) if (expires <= now) delete doc.members[name];
        const { keep, claim, release } = planLeases(doc.leases, Object.keys(doc.members), member, partitions, now);
        const mine = new Set([...keep, ...claim, ...release]);
        doc.leases = [
          ...doc.leases.filter((lease) => !mine.has(lease.partition)),
          ...[...mine].map((partition) => ({ partition, owner: member, expiresAt: now + ttlMs })),
        ];
        return { owned: [...keep, ...claim].sort((a, b) => a - b), surplus: release };
      });
    },
    async releaseLeases(group, member, partitions) {
      if (!partitions.length) return;
      await updateGroup(group, (doc) => {
        doc.leases = doc.leases.filter((lease) => !(lease.owner === member && partitions.includes(lease.partition)));
      });
    },
    async saveGroupCheckpoints(group, member, partitions, position, now) {
      if (!partitions.length) return [];
      const doc = (await read<GroupDoc>(subject('grp', group)))?.value;
      const held = partitions.filter((partition) =>
        doc?.leases.some((lease) => lease.partition === partition && lease.owner === member && lease.expiresAt > now),
      );
      // Not atomic with the lease check: a lease lost in between costs a redelivery (at-least-once).
      for (const partition of held) await saveCheckpoint({ name: `${group}#${partition}`, kind: 'group', position });
      return held;
    },
    async leaveGroup(group, member) {
      await updateGroup(group, (doc) => {
        doc.leases = doc.leases.filter((lease) => lease.owner !== member);
        delete doc.members[member];
      });
    },
    async listLeases(group) {
      const prefix = `${root}.grp.`;
      const subjects = group === undefined ? await keys('grp') : [subject('grp', group)];
      const docs = await Promise.all(subjects.map(async (key) => ({ key, doc: await read<GroupDoc>(key) })));
      return docs
        .flatMap(({ key, doc }) => (doc?.value.leases ?? []).map((lease) => ({ group: decodeToken(key.slice(prefix.length)), ...lease })))
        .sort(byGroupAndPartition);
    },
  };
}
