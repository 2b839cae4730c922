/**
 * Forget a person (docs/lifecycle.md#forget-a-person), on every backend: personal fields are
 * declared at append, read back plain on every read path, and after `forget` read with the
 * fields gone and `metadata.forgotten: true`, everything else unchanged.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  IdempotencyConflictError,
  InvalidEventError,
  LoglineError,
  type NewEvent,
  type RecordedEvent,
  type StoreLimits,
} from '../../src/index.js';
import { collect, take } from '../helpers/collect.js';

type Open = (options?: { limits?: Partial<StoreLimits> }) => Promise<EventStore>;

const signedUp = (subject: string, email: string, extra: Partial<NewEvent> = {}): NewEvent => ({
  type: 'UserSignedUp',
  data: { email, name: `Name of ${subject}`, plan: 'pro' },
  metadata: { subject, personal: ['email', 'name'], correlationId: 'c-1' },
  ...extra,
});

/** What every event looks like apart from its data and metadata. */
const envelope = ({ id, type, streamId, streamVersion, position, recordedAt, occurredAt }: RecordedEvent) => ({
  id,
  type,
  streamId,
  streamVersion,
  position,
  recordedAt,
  occurredAt,
});

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error instanceof LoglineError ? error.code : String(error);
  }
};

export function describePersonalData(name: string, open: Open): void {
  describe(`personal data: ${name}`, () => {
    it('refuses a bad declaration with InvalidEvent and stores nothing', async () => {
      const store = await open();
      const bad: [string, NewEvent][] = [
        ['personal field not in data', { type: 'T', data: { a: 1 }, metadata: { subject: 's', personal: ['email'] } }],
        ['personal without subject', { type: 'T', data: { email: 'x' }, metadata: { personal: ['email'] } }],
        ['subject not a string', { type: 'T', data: { email: 'x' }, metadata: { subject: 7, personal: ['email'] } }],
        ['empty subject', { type: 'T', data: { email: 'x' }, metadata: { subject: '', personal: ['email'] } }],
        ['personal not an array', { type: 'T', data: { email: 'x' }, metadata: { subject: 's', personal: 'email' } }],
        ['personal empty', { type: 'T', data: { email: 'x' }, metadata: { subject: 's', personal: [] } }],
        ['personal with a non-string', { type: 'T', data: { email: 'x' }, metadata: { subject: 's', personal: [1] } }],
        ['data not an object', { type: 'T', data: ['x'], metadata: { subject: 's', personal: ['0'] } }],
        ['reserved $sealed key', { type: 'T', data: {}, metadata: { $sealed: 'v1.AAAA' } }],
      ];
      for (const [what, event] of bad) {
        // The bad event second: the good one before it must not be stored either.
        const error = await store.append('user-bad', [signedUp('ok', 'ok@example.com'), event]).catch((e: unknown) => e);
        expect(error, what).toBeInstanceOf(InvalidEventError);
        expect((error as InvalidEventError).details.index, what).toBe(1);
      }
      expect(await store.streamVersion('user-bad')).toBe(0);
      expect((await store.stats()).events).toBe(0);
      expect(await store.subjectStatus('ok')).toBeUndefined();
    });

    it('reads personal fields back plain on every read path', async () => {
      const store = await open();
      const subject = `u-${randomUUID()}`;
      const written = signedUp(subject, 'homer@example.com', { id: randomUUID() });
      const result = await store.append('user-1', [written, { type: 'Plain', data: { n: 1 } }]);
      const expected = { ...(written.data as object) };
      const read = await collect(store.read('user-1'));
      expect(read[0]?.data).toEqual(expected);
      expect(read[0]?.metadata).toEqual(written.metadata);
      expect((await collect(store.read('user-1', { direction: 'backward' })))[1]?.data).toEqual(expected);
      expect((await collect(store.readAll()))[0]?.data).toEqual(expected);
      expect((await take(store.subscribe({ from: 'start' }), 1))[0]?.data).toEqual(expected);
      const sealed = (await collect(store.readAll({ sealed: true })))[0] as RecordedEvent;
      expect(sealed.data).toEqual({ plan: 'pro' });
      expect(JSON.stringify([sealed.data, sealed.metadata])).not.toContain('homer@example.com');
      expect(typeof sealed.metadata.$sealed).toBe('string');
      // An exact retry is recognised (the stored ciphertext differs from a new one: compared opened).
      expect(await store.append('user-1', [written], { expectedVersion: 0 })).toEqual({
        streamVersion: 1,
        position: read[0]?.position,
      });
      const changed = signedUp(subject, 'other@example.com', { id: written.id });
      expect(await store.append('user-1', [changed], { expectedVersion: 0 }).catch((e: unknown) => e)).toBeInstanceOf(
        IdempotencyConflictError,
      );
      expect(result.streamVersion).toBe(2);
      expect(await store.subjectStatus(subject)).toMatchObject({ subject, createdAt: expect.any(String) });
    });

    it('forget removes the personal fields, marks the events and changes nothing else', async () => {
      const store = await open();
      const homer = `u-${randomUUID()}`;
      const marge = `u-${randomUUID()}`;
      await store.append('user-h', [signedUp(homer, 'homer@example.com')]);
      await store.append('user-m', [signedUp(marge, 'marge@example.com')]);
      await store.append('user-h', [
        { type: 'EmailChanged', data: { email: 'h2@example.com' }, metadata: { subject: homer, personal: ['email'] } },
        { type: 'Plain', data: { n: 2 }, metadata: { subject: homer } },
      ]);
      await store.saveSnapshot({
        streamId: 'user-h',
        name: 'user',
        streamVersion: 3,
        snapshotVersion: 1,
        state: { email: 'h2@example.com' },
        takenAt: new Date().toISOString(),
      });
      await store.saveSnapshot({
        streamId: 'user-m',
        name: 'user',
        streamVersion: 1,
        snapshotVersion: 1,
        state: { email: 'marge@example.com' },
        takenAt: new Date().toISOString(),
      });
      const before = await collect(store.readAll());
      const live = store.subscribe({ from: 'start' })[Symbol.asyncIterator]();
      for (let i = 0; i < before.length; i++) await live.next();

      const result = await store.forget(homer);
      expect(result).toMatchObject({ subject: homer, alreadyForgotten: false });
      const after = await collect(store.readAll());
      const notices = after.filter((e) => e.streamId === '$subjects');
      expect(notices.map((e) => [e.type, e.data])).toEqual([['SubjectForgotten', { subject: homer }]]);
      const events = after.filter((e) => e.streamId !== '$subjects');
      expect(events.map(envelope)).toEqual(before.map(envelope));
      expect(events[0]?.data).toEqual({ plan: 'pro' });
      expect(events[0]?.metadata).toEqual({ subject: homer, personal: ['email', 'name'], correlationId: 'c-1', forgotten: true });
      expect(events[1]?.data).toEqual((before[1] as RecordedEvent).data); // marge untouched
      expect(events[1]?.metadata.forgotten).toBeUndefined();
      expect(events[2]?.data).toEqual({});
      expect(events[2]?.metadata.forgotten).toBe(true);
      expect(events[3]).toEqual(before[3]); // no personal fields: not marked
      expect((await collect(store.read('user-h'))).map((e) => e.data)).toEqual([{ plan: 'pro' }, {}, { n: 2 }]);
      // A live subscriber sees the notification, and events re-read later are forgotten.
      expect((await live.next()).value).toMatchObject({ streamId: '$subjects', type: 'SubjectForgotten' });
      await live.return?.();
      // Snapshots of the forgotten subject's streams are dropped, the others kept.
      expect(await store.loadSnapshot('user-h', 'user')).toBeUndefined();
      expect(await store.loadSnapshot('user-m', 'user')).toMatchObject({ state: { email: 'marge@example.com' } });
      expect(await store.subjectStatus(homer)).toMatchObject({ subject: homer, forgottenAt: result.forgottenAt });
      // The notification counts like any event (a backend must not trip over the system stream).
      expect((await store.stats()).events).toBe(before.length + 1);
      expect((await store.subjectStatus(marge))?.forgottenAt).toBeUndefined();

      // Idempotent: a second forget changes nothing and says so.
      const head = await store.headPosition();
      expect(await store.forget(homer)).toEqual({ subject: homer, forgottenAt: result.forgottenAt, alreadyForgotten: true });
      expect(await store.headPosition()).toBe(head);
      // A forgotten subject takes no new personal data; nothing is stored.
      expect(await codeOf(store.append('user-h', [signedUp(homer, 'again@example.com')]))).toBe('SubjectForgotten');
      expect(await store.headPosition()).toBe(head);
    });

    it('keeps call order when personal and plain appends are issued together', async () => {
      const store = await open();
      const subject = `u-${randomUUID()}`;
      // Not awaited one by one: the personal append must wait for its key, and the ones after it for it.
      const pairs = await Promise.all([
        store.append('user-o', [signedUp(subject, 'o@example.com')], { expectedVersion: 'no_stream' }),
        store.append('user-o', [{ type: 'Plain', data: { n: 1 } }], { expectedVersion: 1 }),
        store.append('user-o', [signedUp(subject, 'o2@example.com')], { expectedVersion: 2 }),
      ]);
      expect(pairs.map((r) => r.streamVersion)).toEqual([1, 2, 3]);
      // Across streams, without expected versions: positions in call order.
      const across = await Promise.all([
        store.append('other-1', [{ type: 'Plain', data: { n: 1 } }]),
        store.append('user-p', [signedUp(subject, 'p@example.com')]),
        store.append('other-2', [{ type: 'Plain', data: { n: 2 } }]),
        store.append('other-3', [{ type: 'Plain', data: { n: 3 } }]),
      ]);
      const positions = across.map((r) => r.position);
      expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : 1)));
      // A failed seal (a forgotten subject) fails its append alone; the ones after it go through in order.
      await store.forget(subject);
      const settled = await Promise.allSettled([
        store.append('user-o', [signedUp(subject, 'x@example.com')]),
        store.append('other-1', [{ type: 'Plain', data: { n: 4 } }], { expectedVersion: 1 }),
      ]);
      expect(settled.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
      expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SubjectForgotten' });
    });

    it('close lets an append that waits for its subject key through before it closes', async () => {
      const store = await open();
      const appended = store.append('user-c', [signedUp(`u-${randomUUID()}`, 'c@example.com')]);
      await store.close();
      expect(await appended).toMatchObject({ streamVersion: 1 });
    });

    it('forget of an unknown subject is a typed error; a bad subject an InvalidArgument', async () => {
      const store = await open();
      await store.append('user-1', [{ type: 'Plain', data: {}, metadata: { subject: 'only-subject' } }]);
      expect(await codeOf(store.forget('nobody'))).toBe('UnknownSubject');
      // A subject without personal fields has no key: unknown as well.
      expect(await codeOf(store.forget('only-subject'))).toBe('UnknownSubject');
      expect(await codeOf(store.forget(''))).toBe('InvalidArgument');
      expect(await codeOf(store.forget(42 as unknown as string))).toBe('InvalidArgument');
      expect(await store.subjectStatus('nobody')).toBeUndefined();
    });

    it('an export of the sealed form imports back as the same plain events', async () => {
      const store = await open();
      const subject = `u-${randomUUID()}`;
      await store.append('user-x', [signedUp(subject, 'x@example.com')]);
      const [exported] = await collect(store.readAll({ sealed: true }));
      const { id, type, data, metadata } = exported as RecordedEvent;
      // Re-importing into the same store is an exact retry: nothing new, same answer.
      expect(await store.append('user-x', [{ id, type, data, metadata }], { expectedVersion: 0 })).toMatchObject({ streamVersion: 1 });
      expect((await store.stats()).events).toBe(1);
      // Into a fresh store (which has no key for the subject) the events read as forgotten.
      const other = await open();
      await other.append('user-x', [{ id, type, data, metadata }]);
      const [copy] = await collect(other.read('user-x'));
      expect(copy?.data).toEqual({ plan: 'pro' });
      expect(copy?.metadata.forgotten).toBe(true);
    });
  });
}
