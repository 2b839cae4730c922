/**
 * One projection backend per store object, and the consumers running in this process (for
 * getLag/listConsumers, which also report consumers that run elsewhere from their checkpoints).
 */

import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore } from '../core/types.js';
import { hasProjectionSupport, type ProjectionBackend } from './backend.js';
import type { Consumer } from './consumer.js';

const backends = new WeakMap<EventStore, Promise<ProjectionBackend>>();

export function backendFor(store: EventStore): Promise<ProjectionBackend> {
  let backend = backends.get(store);
  if (!backend) {
    backend = createBackend(store);
    backends.set(store, backend);
    backend.catch(() => backends.delete(store));
  }
  return backend;
}

async function createBackend(store: EventStore): Promise<ProjectionBackend> {
  // Each store brings its own backend (loaded on demand, like the store's driver).
  if (hasProjectionSupport(store)) return store.projectionBackend();
  throw new InvalidArgumentError(
    'store',
    `the ${store.backend} backend has no projection support`,
    'a memory, SQLite, PostgreSQL or NATS store',
  );
}

/** Consumers started in this process, by store. */
const running = new WeakMap<EventStore, Map<string, Consumer>>();

/** Throws when a consumer of this name already runs on this store in this process. */
export function assertNotRunning(store: EventStore, name: string): void {
  const existing = running.get(store)?.get(name);
  if (existing && existing.status !== 'stopped' && existing.status !== 'failed') {
    throw new InvalidArgumentError('name', `'${name}' is already running on this store`, 'a name not in use in this process');
  }
}

export function trackConsumer(store: EventStore, consumer: Consumer): void {
  let map = running.get(store);
  if (!map) running.set(store, (map = new Map()));
  map.set(consumer.name, consumer);
}

export function runningConsumers(store: EventStore): Map<string, Consumer> {
  return running.get(store) ?? new Map();
}
