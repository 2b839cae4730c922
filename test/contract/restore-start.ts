/**
 * restoreStreamStart (docs/lifecycle.md#backups-and-restores), run by the shared contract suite:
 * an import places a stream's first kept event at its original version, the versions before it
 * reading as absent, as after a scavenge.
 */
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  InvalidArgumentError,
  type NewEvent,
  type RecordedEvent,
  StreamDeletedError,
  WrongExpectedVersionError,
} from '../../src/index.js';
import { collect } from '../helpers/collect.js';

const ev = (n: number): NewEvent => ({ type: 'Counted', data: { n } });
const versions = (events: RecordedEvent[]) => events.map((e) => e.streamVersion);

export function describeRestoreStart(open: () => Promise<EventStore>): void {
  describe('restoreStreamStart', () => {
    it('starts a new stream at a version: the next append continues it, the versions before it are absent', async () => {
      const store = await open();
      await store.append('other-1', [ev(1)]);
      const before = await store.stats();
      await store.restoreStreamStart('started-1', 3);
      expect(await store.streamVersion('started-1')).toBe(3);
      expect(await collect(store.read('started-1'))).toEqual([]);
      expect(await store.getStreamMetadata('started-1')).toEqual({});
      // Resumed: the same version again changes nothing.
      await store.restoreStreamStart('started-1', 3);
      await expect(store.append('started-1', [ev(1)], { expectedVersion: 'no_stream' })).rejects.toBeInstanceOf(WrongExpectedVersionError);
      const { streamVersion } = await store.append('started-1', [ev(4), ev(5)], { expectedVersion: 3 });
      expect(streamVersion).toBe(5);
      expect(versions(await collect(store.read('started-1')))).toEqual([4, 5]);
      expect(versions(await collect(store.read('started-1', { direction: 'backward' })))).toEqual([5, 4]);
      expect(versions(await collect(store.read('started-1', { from: 1 })))).toEqual([4, 5]);
      const all = await collect(store.readAll());
      expect(all.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual(['other-1@1', 'started-1@4', 'started-1@5']);
      const after = await store.stats();
      expect(after.events - before.events).toBe(2);
      expect(after.streams - before.streams).toBe(1);
      // Now it exists at another version: refused, and nothing changes.
      await expect(store.restoreStreamStart('started-1', 3)).rejects.toBeInstanceOf(WrongExpectedVersionError);
      await expect(store.restoreStreamStart('other-1', 7)).rejects.toBeInstanceOf(WrongExpectedVersionError);
      expect(await store.streamVersion('started-1')).toBe(5);
      expect(await store.streamVersion('other-1')).toBe(1);
    });

    it('a start at the highest version costs nothing: reads and appends answer at once', async () => {
      const store = await open();
      const high = 2_147_483_000;
      await store.restoreStreamStart('high-1', high);
      await store.append('high-1', [ev(1)], { expectedVersion: high });
      expect(await store.streamVersion('high-1')).toBe(high + 1);
      expect(versions(await collect(store.read('high-1')))).toEqual([high + 1]);
      expect(versions(await collect(store.read('high-1', { from: 1, limit: 5 })))).toEqual([high + 1]);
      expect(versions(await collect(store.read('high-1', { direction: 'backward' })))).toEqual([high + 1]);
    });

    it('refuses a tombstoned stream and bad versions', async () => {
      const store = await open();
      await store.deleteStream('gone-1', { hard: true });
      await expect(store.restoreStreamStart('gone-1', 2)).rejects.toBeInstanceOf(StreamDeletedError);
      for (const bad of [0, -1, 1.5, Number.NaN, '3']) {
        await expect(store.restoreStreamStart('fresh-1', bad as number)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(await store.streamVersion('fresh-1')).toBe(0);
    });

    it('a started stream without events can be soft-deleted and tombstoned at its version', async () => {
      const store = await open();
      await store.restoreStreamStart('soft-1', 5);
      expect(await store.deleteStream('soft-1', { expectedVersion: 5 })).toEqual({ streamVersion: 5 });
      expect(await store.getStreamMetadata('soft-1')).toEqual({ deleted: 'soft' });
      expect((await store.append('soft-1', [ev(6)], { expectedVersion: 5 })).streamVersion).toBe(6);
      expect(versions(await collect(store.read('soft-1')))).toEqual([6]);

      await store.restoreStreamStart('hard-1', 4);
      expect(await store.deleteStream('hard-1', { hard: true, expectedVersion: 4 })).toEqual({ streamVersion: 4 });
      await store.restoreStreamStart('hard-1', 4); // resumed
      expect(await store.getStreamMetadata('hard-1')).toEqual({ deleted: 'hard' });
      await expect(store.append('hard-1', [ev(5)], { expectedVersion: 4 })).rejects.toBeInstanceOf(StreamDeletedError);
    });

    it('retention and a scavenge work on a started stream', async () => {
      const store = await open();
      await store.restoreStreamStart('kept-1', 10);
      await store.append('kept-1', [ev(11), ev(12)], { expectedVersion: 10 });
      await store.append('kept-1', [ev(13)], { expectedVersion: 12 });
      await store.append('later-1', [ev(1)]);
      await store.setStreamMetadata('kept-1', { maxCount: 1 });
      await store.scavenge();
      expect(await store.streamVersion('kept-1')).toBe(13);
      expect(versions(await collect(store.read('kept-1')))).toEqual([13]);
      await store.setStreamMetadata('kept-1', {});
      expect((await store.append('kept-1', [ev(14)], { expectedVersion: 13 })).streamVersion).toBe(14);
      expect(versions(await collect(store.read('kept-1')))).toEqual([13, 14]);
    });
  });
}
