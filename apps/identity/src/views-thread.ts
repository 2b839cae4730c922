/**
 * SQLite: the async views on a thread of their own, over their own connection to the file. Their
 * transactions are synchronous disk work (SQLite's automatic checkpoints run inside their
 * commits), and on the service's thread they held every request up meanwhile: at 1M users most
 * of a name change's time there (docs/benchmarks.md, identity). The thread runs running-views.ts
 * (views-worker.ts) and posts the views' position and users version as they move; waits for a
 * position resolve here, from those messages.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PositionTimeoutError, ProjectionStoppedError } from 'logline/projections';
import type { Views } from './running-views.js';

/** What the thread is asked. */
export type ToThread = { upgrade: true } | { close: true };
/** What the thread tells: where the views are, and how an upgrade or the views ended. */
export type FromThread =
  | { moved: { usersVersion: number; position: bigint } }
  | { upgraded: true }
  | { upgradeFailed: string }
  | { failed: string };

export interface ViewsThreadData {
  store: string;
  usersVersion: 1 | 2;
}

/** The worker: views-worker beside this file, through tsx when the service runs from its TypeScript sources. */
function spawn(workerData: ViewsThreadData): Worker {
  const entry = new URL(`./views-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(source, { eval: true, workerData });
}

interface Waiter {
  position: bigint;
  resolve: (value: { usersTable: string }) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

export function startViewsThread(data: ViewsThreadData): Promise<Views> {
  const worker = spawn(data);
  let usersVersion: number = data.usersVersion;
  let position = -1n;
  let stopped: Error | undefined;
  const waiters = new Set<Waiter>();
  let upgrade: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | undefined;
  let closing = false;

  const usersTable = () => `users_v${usersVersion}`;
  const release = () => {
    for (const waiter of waiters) {
      if (waiter.position > position) continue;
      clearTimeout(waiter.timer);
      waiters.delete(waiter);
      waiter.resolve({ usersTable: usersTable() });
    }
  };
  const stop = (error: Error) => {
    stopped ??= error;
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(stopped);
    }
    waiters.clear();
    upgrade?.reject(stopped);
  };

  const views: Views = {
    get usersVersion() {
      return usersVersion;
    },
    position: () => (position < 0n ? 0n : position),
    usersTable,
    waitFor(at, timeoutMs) {
      if (stopped) return Promise.reject(stopped);
      if (at <= position) return Promise.resolve({ usersTable: usersTable() });
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          position: at,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(new PositionTimeoutError('users, directory', at, position < 0n ? 0n : position, timeoutMs));
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    upgradeUsers() {
      if (usersVersion >= 2) return Promise.resolve();
      if (stopped) return Promise.reject(stopped);
      if (!upgrade) {
        let resolve = () => {};
        let reject: (error: unknown) => void = () => {};
        const promise = new Promise<void>((yes, no) => {
          resolve = yes;
          reject = no;
        });
        upgrade = { promise, resolve, reject };
        worker.postMessage({ upgrade: true } satisfies ToThread);
      }
      return upgrade.promise;
    },
    async close() {
      if (closing) return;
      closing = true;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ close: true } satisfies ToThread);
      // A thread stuck in a long transaction is ended after a while: its work is redone from its checkpoint.
      const timer = setTimeout(() => void worker.terminate(), 10_000);
      await exited;
      clearTimeout(timer);
      stop(new ProjectionStoppedError('users, directory', 'the service closed'));
    },
  };

  return new Promise((resolve, reject) => {
    worker.on('message', (message: FromThread) => {
      if ('moved' in message) {
        const first = position < 0n;
        ({ usersVersion, position } = message.moved);
        release();
        if (first) resolve(views);
      } else if ('upgraded' in message) upgrade?.resolve();
      else if ('upgradeFailed' in message) {
        upgrade?.reject(new Error(message.upgradeFailed));
        upgrade = undefined;
      } else {
        const error = new ProjectionStoppedError('users, directory', message.failed);
        if (position < 0n) reject(error);
        else console.error(`identity views: ${message.failed}`);
        stop(error);
      }
    });
    worker.on('error', (error) => {
      if (position < 0n) reject(error);
      else console.error('identity views thread failed:', error);
      stop(new ProjectionStoppedError('users, directory', 'the views thread failed', error));
    });
    worker.on('exit', () => {
      if (position < 0n) reject(new Error('the views thread exited before it started'));
      if (!closing) stop(new ProjectionStoppedError('users, directory', 'the views thread exited'));
    });
  });
}
