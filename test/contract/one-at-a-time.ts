/**
 * Every contract test opens one store and is done with it when the next test opens another, so
 * the previous one is closed and what it left (a schema, streams) dropped right away: a suite
 * holds one store at a time on a server other suites share.
 */
import { afterAll } from 'vitest';
import type { EventStore, StoreLimits } from '../../src/index.js';

type Opened = { store: EventStore; drop(): Promise<void> };

export function oneAtATime(open: (options?: { limits?: Partial<StoreLimits>; masterKey?: Uint8Array }) => Promise<Opened>) {
  let previous: Opened | undefined;
  const retire = async () => {
    if (!previous) return;
    const { store, drop } = previous;
    previous = undefined;
    await store.close().catch(() => {});
    await drop();
  };
  afterAll(retire);
  return async (options?: { limits?: Partial<StoreLimits>; masterKey?: Uint8Array }): Promise<EventStore> => {
    await retire();
    previous = await open(options);
    return previous.store;
  };
}
