/**
 * Contract: close() drains what was accepted. Appends that the store accepted (their promise
 * exists) before close() was called are committed and acknowledged, never dropped or rejected,
 * and close() resolves only once every one of them is answered.
 */
import { expect, it } from 'vitest';
import type { AppendResult, EventStore } from '../../src/index.js';

export function closeDrainsContract(open: () => Promise<EventStore>): void {
  it('close drains what was accepted: queued appends commit and are answered before close resolves', async () => {
    const store = await open();
    await store.append('warm', [{ type: 'Warm', data: {} }]);
    const answered = new Set<number>();
    const track = (i: number, append: Promise<AppendResult>) =>
      append.finally(() => {
        answered.add(i);
      });
    // Several appends in one turn of the event loop (coalesced where the backend coalesces),
    // some with expected versions, then close in the same turn.
    const appends = [
      ...Array.from({ length: 4 }, (_, i) => track(i, store.append('drain-shared', [{ type: 'Queued', data: { i } }]))),
      ...Array.from({ length: 4 }, (_, i) =>
        track(
          4 + i,
          store.append(
            `drain-${i}`,
            [
              { type: 'Queued', data: { i } },
              { type: 'Queued2', data: { i } },
            ],
            { expectedVersion: 'no_stream' },
          ),
        ),
      ),
    ];
    await store.close();
    expect([...answered].sort((a, b) => a - b)).toEqual(appends.map((_, i) => i));
    const results = await Promise.allSettled(appends);
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const values = results.map((r) => (r as PromiseFulfilledResult<AppendResult>).value);
    // The shared stream got all four, one version each; each new stream got its two events.
    expect(
      values
        .slice(0, 4)
        .map((v) => v.streamVersion)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
    expect(values.slice(4).map((v) => v.streamVersion)).toEqual([2, 2, 2, 2]);
    expect(new Set(values.map((v) => v.position)).size).toBe(values.length);
  });
}
