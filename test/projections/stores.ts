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

/** A store the test opens and a URL to the same store for the child processes it spawns. */
export interface ProcessBackend {
  name: 'sqlite' | 'postgres' | 'nats';
  open(dir: string): Promise<{ url: string; store: EventStore; dispose(): Promise<void> }>;
}

/**
 * The backends multi-process tests run on: a SQLite file `file` in the test's folder, a fresh
 * PostgreSQL schema and (with `nats`) fresh NATS streams, each when its service is reachable.
 */
export function processBackends(file: string, options: { nats?: boolean } = {}): ProcessBackend[] {
  const sqlite: ProcessBackend = {
    name: 'sqlite',
    async open(dir) {
      const path = join(dir, file);
      const store = await openSqliteStore({ path, synchronous: 'normal' });
      return { url: `sqlite:${path}?synchronous=normal`, store, dispose: () => store.close() };
    },
  };
  const postgres: ProcessBackend = {
    name: 'postgres',
    async open() {
      const fresh = await freshSchemaUrl();
      const store = await openPostgresStore({ url: fresh.url });
      return { url: fresh.url, store, dispose: () => store.close().then(fresh.drop) };
    },
  };
  const nats: ProcessBackend = {
    name: 'nats',
    async open() {
      const fresh = freshNatsUrl();
      const store = await openNatsStore({ url: fresh.url });
      return { url: fresh.url, store, dispose: () => store.close().then(fresh.drop) };
    },
  };
  return [sqlite, ...(postgresReachable ? [postgres] : []), ...(options.nats && natsReachable ? [nats] : [])];
}
