/**
 * The real stores the domain tests run on: memory, an SQLite file, PostgreSQL in a fresh schema and
 * NATS JetStream in fresh streams (each skipped only when unreachable outside CI; with CI=true the
 * require functions throw).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { type EventStore, openStore } from '../../src/index.js';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';

export interface StoreTarget {
  name: 'memory' | 'sqlite' | 'postgres' | 'nats';
  open(): Promise<EventStore>;
}

const pgReachable = await requirePostgres();
const natsReachable = await requireNats();

/** Stores opened through a target are closed (and their files or schemas removed) after the file's tests. */
export function storeTargets(): StoreTarget[] {
  const cleanups: Array<() => Promise<void>> = [];
  let dir: string | undefined;
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const track = (store: EventStore, after?: () => Promise<void>) => {
    cleanups.push(async () => {
      await store.close();
      await after?.();
    });
    return store;
  };
  const targets: StoreTarget[] = [
    { name: 'memory', open: async () => track(await openStore('memory:')) },
    {
      name: 'sqlite',
      open: async () => {
        dir ??= mkdtempSync(join(tmpdir(), 'logline-domain-'));
        return track(await openStore(`sqlite:${join(dir, `store-${cleanups.length}.db`)}`));
      },
    },
  ];
  if (pgReachable) {
    targets.push({
      name: 'postgres',
      open: async () => {
        const schema = await freshSchemaUrl();
        return track(await openStore(schema.url), schema.drop);
      },
    });
  }
  if (natsReachable) {
    targets.push({
      name: 'nats',
      open: async () => {
        const fresh = freshNatsUrl();
        return track(await openStore(fresh.url), fresh.drop);
      },
    });
  }
  return targets;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
