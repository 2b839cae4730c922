/**
 * The domain layer over personal data (docs/lifecycle.md#forget-a-person), on every real store:
 * a decider folds plain personal fields and snapshots them; after forget its snapshot is gone and
 * a load folds the forgotten events (no email), and commands still work on the stream.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Decider, handleCommand, loadAggregate } from '../../src/index.js';
import { storeTargets } from './targets.js';

type Ev =
  | { type: 'EmailSet'; data: { email: string }; metadata: { subject: string; personal: string[] } }
  | { type: 'Visited'; data: Record<string, never> };
type Cmd = { type: 'SetEmail'; data: { email: string } } | { type: 'Visit'; data: Record<string, never> };
interface Profile {
  email: string | null;
  visits: number;
}

const profile = (subject: string): Decider<Profile, Cmd, Ev> => ({
  name: 'profile',
  initialState: () => ({ email: null, visits: 0 }),
  evolve: (state, event) =>
    event.type === 'EmailSet'
      ? // A forgotten event has no email: the state holds none either.
        { ...state, email: (event.data as { email?: string }).email ?? null }
      : { ...state, visits: state.visits + 1 },
  decide: (command): Ev =>
    command.type === 'SetEmail'
      ? { type: 'EmailSet', data: { email: command.data.email }, metadata: { subject, personal: ['email'] } }
      : { type: 'Visited', data: {} },
  snapshots: { every: 2 },
});

for (const target of storeTargets()) {
  describe(`personal data in the domain layer on ${target.name}`, () => {
    it('folds the plain email, snapshots it; after forget the snapshot is dropped and loads hold no email', async () => {
      const store = await target.open();
      const subject = `person-${randomUUID()}`;
      const streamId = `profile-${subject}`;
      const decider = profile(subject);
      await handleCommand(store, streamId, { type: 'SetEmail', data: { email: 'p@example.com' } }, decider);
      await handleCommand(store, streamId, { type: 'Visit', data: {} }, decider);
      expect(await store.loadSnapshot(streamId, 'profile')).toMatchObject({ state: { email: 'p@example.com', visits: 1 } });
      expect((await loadAggregate(store, streamId, decider)).state).toEqual({ email: 'p@example.com', visits: 1 });

      await store.forget(subject);
      expect(await store.loadSnapshot(streamId, 'profile')).toBeUndefined();
      const loaded = await loadAggregate(store, streamId, decider);
      expect(loaded).toMatchObject({ state: { email: null, visits: 1 }, streamVersion: 2, snapshotVersion: 0 });
      await handleCommand(store, streamId, { type: 'Visit', data: {} }, decider);
      expect((await loadAggregate(store, streamId, decider)).state).toEqual({ email: null, visits: 2 });
    });
  });
}
