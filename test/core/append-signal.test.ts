/** AppendSignal: how live readers are woken (src/core/reading.ts). */
import { describe, expect, it } from 'vitest';
import { AppendSignal } from '../../src/core/reading.js';

describe('AppendSignal', () => {
  it('wakes a waiter on notify, and at once when a notify came after the generation it read', async () => {
    const signal = new AppendSignal();
    const seen = signal.generation;
    const woken = signal.wait(seen, 60_000);
    signal.notify();
    await woken;
    expect(signal.generation).toBe(seen + 1);
    const start = performance.now();
    await signal.wait(seen, 60_000);
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it('notifyThrough wakes once per new head: a commit announced twice, or an older one, wakes nobody', () => {
    const signal = new AppendSignal();
    signal.notifyThrough(5n);
    expect(signal.generation).toBe(1);
    signal.notifyThrough(5n); // the database's notification of the same commit
    signal.notifyThrough(3n); // an earlier commit's, arriving late: its events are readable already
    expect(signal.generation).toBe(1);
    signal.notifyThrough(6n);
    expect(signal.generation).toBe(2);
    signal.notify(); // a wake without a position always wakes
    signal.notifyThrough(6n);
    expect(signal.generation).toBe(3);
  });

  it('times out a wait without a notify', async () => {
    const signal = new AppendSignal();
    const start = performance.now();
    await signal.wait(signal.generation, 30);
    expect(performance.now() - start).toBeGreaterThanOrEqual(25);
  });
});
