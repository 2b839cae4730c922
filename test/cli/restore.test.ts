/** How `logline import` reads and applies an export's lifecycle lines (src/cli/restore.ts), in process on a memory store. */
import { describe, expect, it } from 'vitest';
import { appendAt, applyLifecycle, parseLifecycleLine } from '../../src/cli/restore.js';
import { storeTarget } from '../../src/cli/targets.js';
import { InvalidArgumentError, type NewEvent, WrongExpectedVersionError } from '../../src/index.js';
import { createMemoryStore } from '../../src/memory.js';

const tick: NewEvent = { type: 'Tick', data: {} };

describe('lifecycle lines', () => {
  it('parses what export writes, and names the line of a bad one', () => {
    expect(parseLifecycleLine({ lifecycle: { streamId: 's-1', version: 3, maxCount: 2, deleted: 'soft' } }, 1)).toEqual({
      streamId: 's-1',
      version: 3,
      maxCount: 2,
      deleted: 'soft',
    });
    for (const bad of [
      { lifecycle: { version: 3 } },
      { lifecycle: { streamId: 's-1', version: -1 } },
      { lifecycle: { streamId: 's-1', version: 3, deleted: 'gone' } },
      { lifecycle: { streamId: 's-1', version: 3, maxCount: 0 } },
      { lifecycle: { streamId: 's-1', version: 3, color: 'red' } },
      { lifecycle: [] },
      { lifecycle: { streamId: 's-1', version: 3 }, extra: 1 },
    ]) {
      const attempt = () => parseLifecycleLine(bad as never, 7);
      expect(attempt, JSON.stringify(bad)).toThrow(InvalidArgumentError);
      expect(attempt, JSON.stringify(bad)).toThrow(/line 7/);
    }
  });

  it('appendAt starts a missing stream at the version an export kept it from; other conflicts still fail', async () => {
    const store = createMemoryStore();
    const target = storeTarget(store);
    expect(await appendAt(target, 'kept-1', [tick], 4)).toMatchObject({ started: true, result: { streamVersion: 5 } });
    expect(await appendAt(target, 'kept-1', [tick], 5)).toMatchObject({ started: false, result: { streamVersion: 6 } });
    await expect(appendAt(target, 'kept-1', [tick], 2)).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(await store.streamVersion('kept-1')).toBe(6);
  });

  it('applies settings and deletes once; a soft delete the restored stream is already past is skipped', async () => {
    const store = createMemoryStore();
    const target = storeTarget(store);
    const lines = [
      { streamId: 'soft-1', version: 3, deleted: 'soft' as const },
      { streamId: 'hard-1', version: 2, maxCount: 1, deleted: 'hard' as const },
      { streamId: 'ret-1', version: 1, truncateBefore: 5 },
      { streamId: 'later-1', version: 2, deleted: 'soft' as const },
    ];
    await store.append('ret-1', [tick]);
    // Written after its delete (while the export ran): no longer deleted.
    await store.append('later-1', [tick, tick, tick]);
    const applied = [];
    for (const line of lines) applied.push(await applyLifecycle(target, line));
    expect(applied).toEqual([true, true, true, false]);
    expect(await store.getStreamMetadata('soft-1')).toEqual({ deleted: 'soft' });
    expect(await store.streamVersion('soft-1')).toBe(3);
    expect(await store.getStreamMetadata('hard-1')).toEqual({ maxCount: 1, deleted: 'hard' });
    expect(await store.streamVersion('hard-1')).toBe(2);
    expect(await store.getStreamMetadata('ret-1')).toEqual({ truncateBefore: 5 });
    expect(await store.getStreamMetadata('later-1')).toEqual({});
    // Again: nothing to change.
    for (const line of lines) expect(await applyLifecycle(target, line)).toBe(false);
  });
});
