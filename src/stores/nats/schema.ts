/**
 * The JetStream layout of one store (one tenant). Three streams, created on open:
 *
 *   <NAME>            the log: one message per append on subject `<prefix>.<stream id>`,
 *                     holding all of the append's events (server 2.9 has no atomic batch publish)
 *   <NAME>_IDS        the event-id index: subject `<prefix>_ids.<event id>` → the log sequence
 *                     of the message holding that event (idempotency beyond the dedup window)
 *   <NAME>_SNAPSHOTS  the latest snapshot per `<prefix>_snap.<stream id>.<name>`
 *
 * Projection state (checkpoints, leases, parked events) lives in a fourth stream, see
 * projections.ts; per-stream retention settings and deletions in a fifth, `<NAME>_LIFECYCLES`
 * (`<prefix>_life.<stream id>`, the latest record per stream), see retention.ts. Stream ids become one subject token: characters outside [A-Za-z0-9_:@-]
 * (the '.' above all, which separates tokens) are percent-encoded.
 */
import type { JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import { InvalidStoreUrlError, SchemaTooNewError } from '../../core/errors.js';

/** Bumped when the layout changes incompatibly; stored in each stream's description. */
export const LAYOUT_VERSION = 1;

export interface NatsLayout {
  log: string;
  ids: string;
  snapshots: string;
  projections: string;
  /** Subject keys of personal data (subject-keys.ts). */
  keys: string;
  lifecycles: string;
  /** Subject prefix of the log; the other streams use `<prefix>_ids` and so on. */
  prefix: string;
  replicas: number;
}

const STREAM_NAME = /^[A-Za-z0-9_-]{1,48}$/;
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function layoutOf(url: string, stream = 'LOGLINE', prefix = 'logline', replicas = 1): NatsLayout {
  if (!STREAM_NAME.test(stream)) throw new InvalidStoreUrlError(url, `stream must be 1 to 48 characters of [A-Za-z0-9_-], got '${stream}'`);
  if (!SUBJECT_PREFIX.test(prefix) || prefix.length > 64)
    throw new InvalidStoreUrlError(url, `prefix must be dot-separated tokens of [A-Za-z0-9_-], got '${prefix}'`);
  return {
    log: stream,
    ids: `${stream}_IDS`,
    snapshots: `${stream}_SNAPSHOTS`,
    projections: `${stream}_PROJECTIONS`,
    keys: `${stream}_KEYS`,
    lifecycles: `${stream}_LIFECYCLES`,
    prefix,
    replicas,
  };
}

/** One subject token for any string: '.', '*', '>', '%', whitespace and non-ASCII are percent-encoded. */
export function encodeToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_:@-]/gu, (ch) =>
    [...Buffer.from(ch)].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

export const decodeToken = (token: string): string => decodeURIComponent(token);

export const logSubject = (layout: NatsLayout, stream: string): string => `${layout.prefix}.${encodeToken(stream)}`;
export const idSubject = (layout: NatsLayout, eventId: string): string => `${layout.prefix}_ids.${eventId}`;
export const snapshotSubject = (layout: NatsLayout, stream: string, name: string): string =>
  `${layout.prefix}_snap.${encodeToken(stream)}.${encodeToken(name)}`;
/** Every snapshot subject of one stream (a filter). */
export const snapshotSubjects = (layout: NatsLayout, stream: string): string => `${layout.prefix}_snap.${encodeToken(stream)}.*`;

export const lifecycleSubject = (layout: NatsLayout, stream: string): string => `${layout.prefix}_life.${encodeToken(stream)}`;

const description = (what: string) => `logline ${what} (layout ${LAYOUT_VERSION})`;

function configs(layout: NatsLayout): Array<Partial<StreamConfig> & { name: string }> {
  const common = { num_replicas: layout.replicas, allow_direct: true, storage: 'file' as StreamConfig['storage'] };
  return [
    // The log keeps everything; one message may be as large as the server's max_payload.
    { ...common, name: layout.log, subjects: [`${layout.prefix}.>`], description: description('event log') },
    // One entry per event id, written once.
    {
      ...common,
      name: layout.ids,
      subjects: [`${layout.prefix}_ids.>`],
      max_msgs_per_subject: 1,
      description: description('event id index'),
    },
    {
      ...common,
      name: layout.snapshots,
      subjects: [`${layout.prefix}_snap.>`],
      max_msgs_per_subject: 1,
      description: description('snapshots'),
    },
    {
      ...common,
      name: layout.projections,
      subjects: [`${layout.prefix}_proj.>`],
      max_msgs_per_subject: 1,
      description: description('projection state'),
    },
    // Every message per subject is kept: forget erases the one holding a key itself (subject-keys.ts).
    { ...common, name: layout.keys, subjects: [`${layout.prefix}_keys.>`], description: description('subject keys') },
    {
      ...common,
      name: layout.lifecycles,
      subjects: [`${layout.prefix}_life.>`],
      max_msgs_per_subject: 1,
      description: description('stream retention and deletion'),
    },
  ];
}

const isNotFound = (error: unknown) => /stream not found/i.test(String((error as Error)?.message));
const isAlreadyInUse = (error: unknown) => /already in use/i.test(String((error as Error)?.message));
/** A cluster whose meta leader does not yet count enough current peers for the replicas asked. */
const isNoPeers = (error: unknown) => /no suitable peers/i.test(String((error as Error)?.message));

/**
 * How long a stream's creation is retried while the cluster has too few current peers: a cluster
 * that was just started, or whose node is restarting, answers "no suitable peers for placement"
 * for a few seconds. A peer that stays missing fails the open with that error after this.
 */
const PLACEMENT_WAIT_MS = 15_000;

async function addStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  const deadline = Date.now() + PLACEMENT_WAIT_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      await jsm.streams.add(config);
      return;
    } catch (error) {
      if (!isNoPeers(error) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * attempt)));
    }
  }
}

/** Creates the store's streams if missing; refuses streams written by a newer layout. */
export async function ensureLayout(jsm: JetStreamManager, layout: NatsLayout): Promise<void> {
  for (const config of configs(layout)) {
    let existing: { config: StreamConfig } | undefined;
    try {
      existing = await jsm.streams.info(config.name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (!existing) {
      try {
        await addStream(jsm, config);
        continue;
      } catch (error) {
        // Another process created it between our look and our add.
        if (!isAlreadyInUse(error)) throw error;
        existing = await jsm.streams.info(config.name);
      }
    }
    const found = Number(/\(layout (\d+)\)/.exec(existing.config.description ?? '')?.[1] ?? LAYOUT_VERSION);
    if (found > LAYOUT_VERSION) throw new SchemaTooNewError('nats', found, LAYOUT_VERSION);
  }
}

/** Deletes the store's streams (tests, and `logline` tenants being removed). */
export async function dropLayout(jsm: JetStreamManager, layout: NatsLayout): Promise<void> {
  for (const name of [layout.log, layout.ids, layout.snapshots, layout.projections, layout.keys, layout.lifecycles]) {
    await jsm.streams.delete(name).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
  }
}
