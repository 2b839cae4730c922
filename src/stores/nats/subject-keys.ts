/**
 * The NATS key table of personal data (docs/lifecycle.md#forget-a-person), in the stream
 * `<NAME>_KEYS`: subject `<prefix>_keys.k.<subject>` holds the subject's key (the latest message
 * wins), `<prefix>_keys.s.<subject>.<stream>` notes a stream holding its events (forget purges
 * their snapshots). The stream keeps every message per subject on purpose: forget publishes the
 * tombstone first, then erases the message that held the key (JetStream overwrites an erased
 * message in its files; a message dropped by a per-subject limit would only be marked deleted).
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import type { KeyTable, StoredKey, SubjectKeyRow } from '../../core/personal-data.js';
import { decodeToken, encodeToken, type NatsLayout } from './schema.js';

interface KeyEntry {
  key: string | null;
  createdAt: string;
  forgottenAt: string | null;
}

export interface NatsKeyParts {
  js: JetStreamClient;
  jsm: JetStreamManager;
  layout: NatsLayout;
  /** The leader's copy of the last message on `subject` of `stream`, or undefined. */
  lastOn(stream: string, subject: string): Promise<StoredMsg | undefined>;
  /** Retries while JetStream is unavailable (the store's patiently). */
  patiently<T>(what: string, operation: () => Promise<T>): Promise<T>;
}

/** Subjects whose key and streams a page of `list` asks for at once. */
const LIST_CONCURRENCY = 32;

const isWrongLastSequence = (error: unknown) => /wrong last sequence/i.test(String((error as Error)?.message));
const isNotFound = (error: unknown) => /no message found|not found/i.test(String((error as Error)?.message));

/** The index of the first name above `after` in sorted `names`. */
function firstAfter(names: string[], after: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((names[mid] as string) <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

export function createNatsKeyTable({ js, jsm, layout, lastOn, patiently }: NatsKeyParts): KeyTable {
  const stream = layout.keys;
  const keySubject = (subject: string) => `${layout.prefix}_keys.k.${encodeToken(subject)}`;
  const streamsOf = (subject: string) => `${layout.prefix}_keys.s.${encodeToken(subject)}`;
  /** The sorted subject names the last full page of `list` came from, and where the next page starts. */
  let listing: { next: string; names: string[] } | undefined;
  const entryOf = async (subject: string): Promise<{ seq: number; entry: KeyEntry } | undefined> => {
    const message = await lastOn(stream, keySubject(subject));
    return message && { seq: message.seq, entry: message.json<KeyEntry>() };
  };
  const toStored = (entry: KeyEntry): StoredKey => ({
    key: entry.key === null ? undefined : Buffer.from(entry.key, 'hex'),
    createdAt: entry.createdAt,
    forgottenAt: entry.forgottenAt ?? undefined,
  });
  return {
    async load(subjects) {
      const found = new Map<string, StoredKey>();
      const entries = await Promise.all(subjects.map(entryOf));
      subjects.forEach((subject, i) => {
        const entry = entries[i];
        if (entry) found.set(subject, toStored(entry.entry));
      });
      return found;
    },
    async insert(keys, streams, at) {
      for (const [subject, key] of keys) {
        const entry: KeyEntry = { key: Buffer.from(key).toString('hex'), createdAt: at, forgottenAt: null };
        // Only if the subject has no key yet: another writer's key wins.
        await patiently('storing a subject key', () =>
          js.publish(keySubject(subject), JSON.stringify(entry), { expect: { lastSubjectSequence: 0 } }).catch((error) => {
            if (!isWrongLastSequence(error)) throw error;
          }),
        );
      }
      for (const [subject, streamId] of streams) {
        await patiently('noting a subject stream', () => js.publish(`${streamsOf(subject)}.${encodeToken(streamId)}`, ''));
      }
    },
    async forget(subject, at) {
      for (;;) {
        const current = await entryOf(subject);
        if (!current) return undefined;
        const { seq, entry } = current;
        if (entry.forgottenAt !== null) return { subject, forgottenAt: entry.forgottenAt, alreadyForgotten: true };
        const tombstone: KeyEntry = { key: null, createdAt: entry.createdAt, forgottenAt: at };
        try {
          await js.publish(keySubject(subject), JSON.stringify(tombstone), { expect: { lastSubjectSequence: seq } });
        } catch (error) {
          if (isWrongLastSequence(error)) continue; // a concurrent forget: look again
          throw error;
        }
        await patiently('erasing a subject key', () =>
          jsm.streams.deleteMessage(stream, seq, true).catch((error) => {
            if (!isNotFound(error)) throw error;
          }),
        );
        const info = await patiently("listing a subject's streams", () =>
          jsm.streams.info(stream, { subjects_filter: `${streamsOf(subject)}.>` }),
        );
        const start = streamsOf(subject).length + 1;
        for (const noted of Object.keys(info.state.subjects ?? {})) {
          const streamToken = noted.slice(start);
          await patiently('dropping snapshots', () =>
            jsm.streams.purge(layout.snapshots, { filter: `${layout.prefix}_snap.${streamToken}.>` }),
          );
        }
        return { subject, forgottenAt: at, alreadyForgotten: false };
      }
    },
    // JetStream lists subjects but cannot page them in order: the names come from the stream's
    // per-subject counts (as listStreams does), the keys and streams a page at a time.
    async list(after, limit) {
      // An export pages through every subject: the sorted names of its first page serve the
      // following ones (each page starting where the last ended), instead of listing and sorting
      // all of them again per page. Subjects keyed meanwhile may be missed, as by any paged read.
      let names = listing?.next === after ? listing.names : undefined;
      if (!names) {
        const root = `${layout.prefix}_keys.k.`;
        const info = await patiently('listing subject keys', () => jsm.streams.info(stream, { subjects_filter: `${root}>` }));
        names = Object.keys(info.state.subjects ?? {})
          .map((name) => decodeToken(name.slice(root.length)))
          .sort();
      }
      const from = firstAfter(names, after);
      const subjects = names.slice(from, from + limit);
      listing = subjects.length === limit ? { next: subjects[subjects.length - 1] as string, names } : undefined;
      const rowOf = async (subject: string): Promise<SubjectKeyRow | undefined> => {
        const current = await entryOf(subject);
        if (!current) return undefined;
        const noted = await patiently("listing a subject's streams", () =>
          jsm.streams.info(stream, { subjects_filter: `${streamsOf(subject)}.>` }),
        );
        const start = streamsOf(subject).length + 1;
        const streams = Object.keys(noted.state.subjects ?? {})
          .map((name) => decodeToken(name.slice(start)))
          .sort();
        return { subject, ...toStored(current.entry), streams };
      };
      // A few requests at a time: a page holds hundreds of subjects, two requests each.
      const rows: (SubjectKeyRow | undefined)[] = [];
      for (let i = 0; i < subjects.length; i += LIST_CONCURRENCY)
        rows.push(...(await Promise.all(subjects.slice(i, i + LIST_CONCURRENCY).map(rowOf))));
      return rows.filter((row) => row !== undefined);
    },
    async restore(rows) {
      for (const row of rows) {
        const entry: KeyEntry = {
          key: row.key ? Buffer.from(row.key).toString('hex') : null,
          createdAt: row.createdAt,
          forgottenAt: row.forgottenAt ?? null,
        };
        // Only if the subject has no key yet, as insert: a key already there wins.
        await patiently('restoring a subject key', () =>
          js.publish(keySubject(row.subject), JSON.stringify(entry), { expect: { lastSubjectSequence: 0 } }).catch((error) => {
            if (!isWrongLastSequence(error)) throw error;
          }),
        );
        for (const streamId of row.streams) {
          await patiently('noting a subject stream', () => js.publish(`${streamsOf(row.subject)}.${encodeToken(streamId)}`, ''));
        }
      }
    },
    async status(subject) {
      const current = await entryOf(subject);
      if (!current) return undefined;
      const { createdAt, forgottenAt } = current.entry;
      return { subject, createdAt, ...(forgottenAt === null ? {} : { forgottenAt }) };
    },
  };
}
