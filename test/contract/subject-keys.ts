/**
 * Backups and restores of subject keys (docs/lifecycle.md#backups-and-restores), on every backend:
 * an event export (sealed) plus a key backup restore into a fresh store with personal data
 * plain, forgotten subjects stay forgotten, a re-import changes nothing, a different key is a
 * conflict, and a master key's wrapped keys open only under that master key. Stores are opened
 * one after the other (the PostgreSQL and NATS suites hold one at a time): each test exports
 * into arrays before it opens the next store.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  InvalidArgumentError,
  type NewEvent,
  type RecordedEvent,
  type StoreLimits,
  SUBJECT_KEYS_FORMAT,
  type SubjectKeyRecord,
} from '../../src/index.js';
import { collect } from '../helpers/collect.js';

export type OpenWithKey = (options?: { limits?: Partial<StoreLimits>; masterKey?: Uint8Array }) => Promise<EventStore>;

const signedUp = (subject: string, email: string): NewEvent => ({
  type: 'UserSignedUp',
  data: { email, plan: 'pro' },
  metadata: { subject, personal: ['email'] },
});

/** The sealed log and the key backup of a store with subjects a (live, two streams) and b (forgotten). */
export async function backupOf(store: EventStore, a: string, b: string) {
  await store.append('user-a', [signedUp(a, 'a@example.com')]);
  await store.append('user-b', [signedUp(b, 'b@example.com')]);
  await store.append('mail-a', [
    { type: 'EmailChanged', data: { email: 'a2@example.com' }, metadata: { subject: a, personal: ['email'] } },
  ]);
  await store.forget(b);
  const events = await collect(store.readAll({ sealed: true }));
  const keys = await collect(store.exportSubjectKeys());
  return { events, keys };
}

/**
 * Appends an export's events as `logline import` does (each at its stream version). The
 * `$subjects` notifications stay out: system streams take no appends, and the restored key
 * backup already says who is forgotten.
 */
export async function importEvents(store: EventStore, events: RecordedEvent[]): Promise<void> {
  for (const { id, type, data, metadata, occurredAt, streamId, streamVersion } of events) {
    if (streamId.startsWith('$')) continue;
    await store.append(streamId, [{ id, type, data, metadata, occurredAt }], { expectedVersion: streamVersion - 1 });
  }
}

/** What a reader sees of subject a and b after a restore. */
export async function expectRestored(store: EventStore, a: string, b: string): Promise<void> {
  const read = (await collect(store.readAll())).filter((e) => !e.streamId.startsWith('$'));
  expect(read.map((e) => [e.streamId, e.data, e.metadata.forgotten])).toEqual([
    ['user-a', { email: 'a@example.com', plan: 'pro' }, undefined],
    ['user-b', { plan: 'pro' }, true],
    ['mail-a', { email: 'a2@example.com' }, undefined],
  ]);
  expect((await store.subjectStatus(a))?.forgottenAt).toBeUndefined();
  expect((await store.subjectStatus(b))?.forgottenAt).toEqual(expect.any(String));
  // b stays forgotten: no new personal data for it.
  await expect(store.append('user-b', [signedUp(b, 'again@example.com')])).rejects.toMatchObject({ code: 'SubjectForgotten' });
}

const argumentOf = async (promise: Promise<unknown>): Promise<unknown> => {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidArgumentError);
  return (error as InvalidArgumentError).details.argument;
};

export function describeSubjectKeys(name: string, open: OpenWithKey): void {
  describe(`subject key backups: ${name}`, () => {
    it('exports every subject in order; keys first, then events restore personal data; forget wins; re-import is a no-op', async () => {
      const source = await open();
      const a = `a-${randomUUID()}`;
      const b = `b-${randomUUID()}`;
      const { events, keys } = await backupOf(source, a, b);
      const live = keys[0] as SubjectKeyRecord;
      expect(keys).toEqual([
        {
          format: SUBJECT_KEYS_FORMAT,
          subject: a,
          key: expect.any(String),
          wrapped: false,
          createdAt: expect.any(String),
          streams: ['mail-a', 'user-a'],
        },
        {
          format: SUBJECT_KEYS_FORMAT,
          subject: b,
          wrapped: false,
          createdAt: expect.any(String),
          forgottenAt: expect.any(String),
          streams: ['user-b'],
        },
      ]);
      expect(Buffer.from(live.key as string, 'base64').length).toBe(32);

      const target = await open();
      expect(await target.importSubjectKeys(keys)).toEqual({ imported: 2, unchanged: 0, forgotten: 0, conflicts: [] });
      await importEvents(target, events);
      await expectRestored(target, a, b);
      expect(await target.subjectStatus(b)).toEqual({ subject: b, createdAt: keys[1]?.createdAt, forgottenAt: keys[1]?.forgottenAt });

      // Re-importing changes nothing: same answer, no event, the same backup out again.
      const head = await target.headPosition();
      expect(await target.importSubjectKeys(keys)).toEqual({ imported: 0, unchanged: 2, forgotten: 0, conflicts: [] });
      expect(await target.headPosition()).toBe(head);
      expect(await collect(target.exportSubjectKeys())).toEqual(keys);

      // A different live key for a known subject is a conflict: reported, nothing changed.
      const other = { ...live, key: randomBytes(32).toString('base64') };
      expect(await target.importSubjectKeys([other])).toEqual({ imported: 0, unchanged: 0, forgotten: 0, conflicts: [a] });
      expect((await collect(target.read('user-a')))[0]?.data).toEqual({ email: 'a@example.com', plan: 'pro' });

      // A key for b (forgotten here) does not bring it back.
      expect(await target.importSubjectKeys([{ ...live, subject: b }])).toEqual({ imported: 0, unchanged: 1, forgotten: 0, conflicts: [] });
      expect((await collect(target.read('user-b')))[0]?.metadata.forgotten).toBe(true);

      // A backup that says a is forgotten forgets a here, with the store's own forget (and its notice).
      const { key: _key, ...rest } = live;
      const forgottenA = { ...rest, forgottenAt: new Date().toISOString() };
      expect(await target.importSubjectKeys([forgottenA])).toEqual({ imported: 0, unchanged: 0, forgotten: 1, conflicts: [] });
      expect((await collect(target.read('user-a')))[0]?.metadata.forgotten).toBe(true);
      const notices = (await collect(target.readAll())).filter((e) => e.streamId === '$subjects');
      expect(notices.map((e) => e.data)).toEqual([{ subject: a }]);
    });

    it('events first, then keys restores too; a bad record is an InvalidArgument naming the field, nothing of it stored', async () => {
      const source = await open();
      const a = `a-${randomUUID()}`;
      const b = `b-${randomUUID()}`;
      const { events, keys } = await backupOf(source, a, b);
      const live = keys[0] as SubjectKeyRecord;

      const target = await open();
      await importEvents(target, events);
      // Without the keys the personal fields read as forgotten, but the subjects are not.
      expect((await collect(target.read('user-a')))[0]?.metadata.forgotten).toBe(true);
      expect(await target.subjectStatus(a)).toBeUndefined();

      const c = `c-${randomUUID()}`;
      const bad: [unknown, string][] = [
        [{ ...live, subject: c, format: 'logline-subject-keys/2' }, 'format'],
        [{ ...live, subject: '' }, 'subject'],
        [{ ...live, subject: c, key: 'not base64!' }, 'key'],
        [{ ...live, subject: c, key: randomBytes(16).toString('base64') }, 'key'],
        [{ ...live, subject: c, wrapped: true }, 'key'],
        [{ ...live, subject: c, wrapped: 'no' }, 'wrapped'],
        [{ ...live, subject: c, createdAt: 'yesterday' }, 'createdAt'],
        [{ ...live, subject: c, forgottenAt: live.createdAt }, 'key'],
        [{ ...live, subject: c, streams: 'user-a' }, 'streams'],
        [{ ...live, subject: c, extra: 1 }, 'record'],
        [null, 'record'],
      ];
      for (const [record, field] of bad) {
        expect(await argumentOf(target.importSubjectKeys([record as SubjectKeyRecord])), field).toBe(field);
      }
      expect(await target.subjectStatus(c)).toBeUndefined();
      // The records before a bad one are imported, the bad one and those after it not.
      expect(await argumentOf(target.importSubjectKeys([live, { ...live, subject: c, key: 'x' }, keys[1] as SubjectKeyRecord]))).toBe(
        'key',
      );
      expect(await target.subjectStatus(a)).toMatchObject({ subject: a });
      expect(await target.subjectStatus(b)).toBeUndefined();
      expect(await target.importSubjectKeys(keys)).toEqual({ imported: 1, unchanged: 1, forgotten: 0, conflicts: [] });
      await expectRestored(target, a, b);
    });

    it('pages through more subjects than one key-table page, in subject order, both ways', async () => {
      const source = await open();
      const prefix = randomUUID();
      // Out of order on purpose, and more than two pages (500 each) in one append.
      const subjects = Array.from({ length: 1101 }, (_, i) => `${prefix}-${String((i * 7919) % 1101).padStart(4, '0')}`);
      await source.append(
        'user-many',
        subjects.map((subject) => signedUp(subject, `${subject}@example.com`)),
      );
      const keys = await collect(source.exportSubjectKeys());
      expect(keys.map((k) => k.subject)).toEqual([...subjects].sort());
      const events = await collect(source.readAll({ sealed: true }));

      const target = await open();
      // A subject twice in one import: the second is judged after the first.
      expect(await target.importSubjectKeys([...keys, keys[0] as SubjectKeyRecord])).toEqual({
        imported: 1101,
        unchanged: 1,
        forgotten: 0,
        conflicts: [],
      });
      await importEvents(target, events);
      const read = await collect(target.read('user-many'));
      expect(read.map((e) => (e.data as { email: string }).email)).toEqual(subjects.map((subject) => `${subject}@example.com`));
    }, 120_000);

    it('a master key store exports wrapped keys that open only with the same master key', async () => {
      const masterKey = randomBytes(32);
      const source = await open({ masterKey });
      const a = `a-${randomUUID()}`;
      const b = `b-${randomUUID()}`;
      const { events, keys } = await backupOf(source, a, b);
      expect(keys.map((k) => k.wrapped)).toEqual([true, false]);
      expect(Buffer.from(keys[0]?.key as string, 'base64').length).toBe(60);

      // Neither a store without a master key nor one with another takes them: it could not read them.
      for (const other of [undefined, randomBytes(32)]) {
        const stranger = await open({ masterKey: other });
        expect(await argumentOf(stranger.importSubjectKeys(keys))).toBe('key');
        expect(await stranger.subjectStatus(a)).toBeUndefined();
      }

      const target = await open({ masterKey });
      expect(await target.importSubjectKeys(keys)).toEqual({ imported: 2, unchanged: 0, forgotten: 0, conflicts: [] });
      await importEvents(target, events);
      await expectRestored(target, a, b);
      expect(await collect(target.exportSubjectKeys())).toEqual(keys);
    });
  });
}
