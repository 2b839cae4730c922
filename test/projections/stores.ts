/**
 * The stores every projections test runs on: memory, a fresh SQLite file, a fresh PostgreSQL schema.
 * NATS (fresh streams) joins the tests that do not assume positions 1, 2, 3… (its positions have gaps).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/memory.js';
import { openNatsStore } from '../../src/nats.js';
import { openPostgresStore } from '../../src/postgres.js';
import { openSqliteStore } from '../../src/sqlite.js';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';

export interface TestStore {
  store: EventStore;
  /** Closes the store and removes what it left behind. */
  dispose(): Promise<void>;
}

export interface Backend {
  name: 'memory' | 'sqlite' | 'postgres' | 'nats';
  open(): Promise<TestStore>;
}

export const memoryBackend: Backend = {
  name: 'memory',
  async open() {
    const store = createMemoryStore();
    return { store, dispose: () => store.close() };
  },
};

export const sqliteBackend: Backend = {
  name: 'sqlite',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'logline-proj-'));
    // synchronous=normal: durability across power loss is not what these tests are about.
    const store = await openSqliteStore({ path: join(dir, 'events.db'), synchronous: 'normal' });
    return {
      store,
      async dispose() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const tempDir = (): { dir: string; remove(): void } => {
  const dir = mkdtempSync(join(tmpdir(), 'logline-proj-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
};

export const postgresBackend: Backend = {
  name: 'postgres',
  async open() {
    const fresh = await freshSchemaUrl();
    const store = await openPostgresStore({ url: fresh.url, pollMs: 100 });
    return {
      store,
      async dispose() {
        await store.close();
        await fresh.drop();
      },
    };
  },
};

export const natsBackend: Backend = {
  name: 'nats',
  async open() {
    const fresh = freshNatsUrl();
    const store = await openNatsStore({ url: fresh.url });
    return {
      store,
      async dispose() {
        await store.close();
        await fresh.drop();
      },
    };
  },
};

/** Whether PostgreSQL answers (with CI=true, unreachable is an error, never a skip). */
export const postgresReachable = await requirePostgres();
/** Whether NATS JetStream answers (the same rule). */
export const natsReachable = await requireNats();

export const backends: Backend[] = [memoryBackend, sqliteBackend, ...(postgresReachable ? [postgresBackend] : [])];
