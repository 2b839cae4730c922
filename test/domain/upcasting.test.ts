/** Upcasting: events written by older app versions stay readable forever, upgraded step by step on read. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Command,
  type Decider,
  defineUpcasters,
  type Event,
  EventSchemaTooNewError,
  type EventStore,
  handleCommand,
  InvalidArgumentError,
  loadAggregate,
  openStore,
  readStream,
  upcaster,
} from '../../src/index.js';
import { deciderSpec } from '../../src/testing.js';
import { collect } from '../helpers/collect.js';
import { storeTargets } from './targets.js';

// Today's events. History: v1 'UserRegistered' { name }, v2 'UserRegistered' { firstName, lastName },
// v3 renamed to 'UserSignedUp' and gained email.
type UserEvent =
  | Event<'UserSignedUp', { firstName: string; lastName: string; email: string | null }>
  | Event<'EmailChanged', { email: string }>;
type UserCommand = Command<'SignUp', { firstName: string; lastName: string; email: string }> | Command<'ChangeEmail', { email: string }>;
interface User {
  name: string;
  email: string | null;
  versionsSeen: number[];
}

const userUpcasters = defineUpcasters([
  upcaster<{ name: string }, { firstName: string; lastName: string }>({
    type: 'UserRegistered',
    from: 1,
    upcast: ({ name }) => {
      const [firstName = '', ...rest] = name.split(' ');
      return { firstName, lastName: rest.join(' ') };
    },
  }),
  upcaster<{ firstName: string; lastName: string }, { firstName: string; lastName: string; email: null }>({
    type: 'UserRegistered',
    from: 2,
    toType: 'UserSignedUp',
    upcast: (data) => ({ ...data, email: null }),
  }),
]);

const users: Decider<User, UserCommand, UserEvent> = {
  name: 'user',
  initialState: () => ({ name: '', email: null, versionsSeen: [] }),
  evolve: (state, event) => {
    const versionsSeen = [...state.versionsSeen, event.metadata.schemaVersion as number];
    switch (event.type) {
      case 'UserSignedUp':
        return { name: `${event.data.firstName} ${event.data.lastName}`, email: event.data.email, versionsSeen };
      case 'EmailChanged':
        return { ...state, email: event.data.email, versionsSeen };
    }
  },
  decide: (command) => {
    switch (command.type) {
      case 'SignUp':
        return { type: 'UserSignedUp', data: command.data };
      case 'ChangeEmail':
        return { type: 'EmailChanged', data: command.data };
    }
  },
  upcasters: userUpcasters,
};

describe('defineUpcasters', () => {
  it('knows each type’s newest version, through renames', () => {
    expect(userUpcasters.currentVersion('UserRegistered')).toBe(2);
    expect(userUpcasters.currentVersion('UserSignedUp')).toBe(3);
    expect(userUpcasters.currentVersion('EmailChanged')).toBe(1);
    // An unversioned event is at the first version its type name exists in.
    expect(userUpcasters.versionOf({ type: 'UserRegistered' })).toBe(1);
    expect(userUpcasters.versionOf({ type: 'UserSignedUp' })).toBe(3);
    expect(userUpcasters.stamp({ type: 'UserSignedUp', data: {} }).metadata).toEqual({ schemaVersion: 3 });
  });

  it('rejects duplicates, gaps and bad versions with InvalidArgumentError', () => {
    const step = { type: 'A', from: 1, upcast: (d: unknown) => d as null };
    expect(() => defineUpcasters([step, step])).toThrow(/two upcasters for 'A' from version 1/);
    expect(() => defineUpcasters([step, { ...step, from: 3 }])).toThrow(/no upcaster from version 2/);
    expect(() => defineUpcasters([{ ...step, from: 0 }])).toThrow(InvalidArgumentError);
  });
});

describe('the test kit with upcasters', () => {
  it('given events in old versions are upcast; decided events are stamped like handleCommand stamps them', async () => {
    const old = { type: 'UserRegistered', data: { name: 'Apu Nahasapeemapetilon' } } as unknown as UserEvent;
    await deciderSpec(users)([old])
      .when({ type: 'ChangeEmail', data: { email: 'apu@kwik-e.mart' } })
      .thenState({ name: 'Apu Nahasapeemapetilon', email: 'apu@kwik-e.mart', versionsSeen: [3, 1] });
    await deciderSpec(users)([])
      .when({ type: 'SignUp', data: { firstName: 'Moe', lastName: 'Szyslak', email: 'moe@tavern.com' } })
      .thenState({ name: 'Moe Szyslak', email: 'moe@tavern.com', versionsSeen: [3] });
  });
});

describe('upcasting rows written by an older app version into an SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'logline-upcast-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads v1 and v2 rows as v3, writes new events at v3, and never rewrites old rows', async () => {
    const path = join(dir, 'app.db');
    await (await openStore(`sqlite:${path}`)).close(); // today's schema, empty
    // What release 1 and release 2 of the app wrote, byte for byte: no schemaVersion in release 1.
    const raw = new Database(path);
    const insert = raw.prepare(
      'INSERT INTO events (stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    insert.run(
      'user-1',
      1,
      '00000000-0000-4000-8000-000000000001',
      'UserRegistered',
      '{"name":"Homer Jay Simpson"}',
      '{}',
      '2015-01-01T00:00:00.000Z',
      '2015-01-01T00:00:00.000Z',
    );
    insert.run(
      'user-1',
      2,
      '00000000-0000-4000-8000-000000000002',
      'EmailChanged',
      '{"email":"homer@plant.com"}',
      '{}',
      '2015-02-01T00:00:00.000Z',
      '2015-02-01T00:00:00.000Z',
    );
    insert.run(
      'user-2',
      1,
      '00000000-0000-4000-8000-000000000003',
      'UserRegistered',
      '{"firstName":"Marge","lastName":"Simpson"}',
      '{"schemaVersion":2}',
      '2016-01-01T00:00:00.000Z',
      '2016-01-01T00:00:00.000Z',
    );
    const before = raw.prepare('SELECT * FROM events ORDER BY position').all();
    raw.close();

    const store = await openStore(`sqlite:${path}`);
    try {
      const homer = await loadAggregate(store, 'user-1', users);
      expect(homer.state).toEqual({ name: 'Homer Jay Simpson', email: 'homer@plant.com', versionsSeen: [3, 1] });
      const marge = await collect(readStream(store, 'user-2', users));
      expect(marge[0]).toMatchObject({
        type: 'UserSignedUp',
        data: { firstName: 'Marge', lastName: 'Simpson', email: null },
        metadata: { schemaVersion: 3 },
      });

      const changed = await handleCommand(store, 'user-2', { type: 'ChangeEmail', data: { email: 'marge@home.com' } }, users);
      expect(changed.state).toEqual({ name: 'Marge Simpson', email: 'marge@home.com', versionsSeen: [3, 1] });
      await handleCommand(
        store,
        'user-3',
        { type: 'SignUp', data: { firstName: 'Lisa', lastName: 'Simpson', email: 'lisa@school.edu' } },
        users,
      );
      const [lisa] = await collect(store.read('user-3'));
      expect(lisa).toMatchObject({ type: 'UserSignedUp', metadata: { schemaVersion: 3 } });
    } finally {
      await store.close();
    }
    const after = new Database(path, { readonly: true });
    expect(after.prepare('SELECT * FROM events WHERE position <= 3 ORDER BY position').all()).toEqual(before);
    after.close();
  });
});

for (const target of storeTargets()) {
  describe(`upcasting on ${target.name}`, () => {
    let store: EventStore;
    const getStore = async () => (store ??= await target.open());

    it('events appended without the new fields fold like new ones', async () => {
      const s = await getStore();
      await s.append('user-old', [
        { type: 'UserRegistered', data: { name: 'Ned Flanders' } },
        { type: 'EmailChanged', data: { email: 'ned@church.org' } },
      ]);
      const { state } = await loadAggregate(s, 'user-old', users);
      expect(state).toEqual({ name: 'Ned Flanders', email: 'ned@church.org', versionsSeen: [3, 1] });
      // The store still holds the old shape: upcasting happens on read only.
      expect((await collect(s.read('user-old')))[0]).toMatchObject({
        type: 'UserRegistered',
        data: { name: 'Ned Flanders' },
        metadata: {},
      });
    });

    it('an event from a newer release (unknown schemaVersion) is a clear EventSchemaTooNewError', async () => {
      const s = await getStore();
      await s.append('user-future', [{ type: 'UserSignedUp', data: { firstName: 'X' }, metadata: { schemaVersion: 9 } }]);
      const error = await loadAggregate(s, 'user-future', users).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventSchemaTooNewError);
      expect(error).toMatchObject({ code: 'EventSchemaTooNew', details: { eventType: 'UserSignedUp', found: 9, known: 3 } });
    });
  });
}
