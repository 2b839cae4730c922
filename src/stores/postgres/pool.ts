/**
 * The store's read pool: `size` postgres.js instances of one connection each, behind one `Sql`.
 *
 * Why not one postgres.js pool of `size` connections: postgres.js 3.4.9 keeps a pool's idle and
 * busy connections in queues whose arrays only shrink when a queue runs empty, and scans them on
 * every query (docs/postgres.md, *Known driver issue*). While a pool has more connections open
 * than queries in flight, or more queries in flight than connections, a queue never runs empty:
 * every query then costs a little more time and memory than the one before, without end. The
 * queues of a one-connection instance run empty on every query, so they stay small.
 *
 * A query goes to the first instance with fewer than DEPTH queries running, and only when every
 * one has that many to the one with the fewest. Queries made together then share a connection:
 * postgres.js sends them in one socket write and the server runs them in one process, one wake-up
 * for all. Spread one to a connection, each cost a write system call and a server process of its
 * own, and those processes took the CPU from the ones applying read models (docs/postgres.md,
 * *The read pool's pick*). A quiet store keeps one connection open (postgres.js opens a connection
 * on its first query). Helpers that build no query (`sql(name)`, `sql.json`, …), `file`, and
 * `listen`/`notify`/`subscribe` (their own connections) come from the first instance.
 */
import type { Sql } from 'postgres';

/**
 * Weight of a connection held by a transaction or a reserved session: nothing else runs on it
 * until it ends, so a query goes there only when every connection is held. A transaction that
 * awaits a query outside it (on `store.sql`) must find another connection.
 */
const HELD = 1_000_000;
/** Queries running on one connection before the next connection gets any. */
export const DEPTH = 16;

/** The parts of a postgres.js Query (not in its types) that route it to a connection. */
interface RunnableQuery {
  handler: (query: RunnableQuery) => unknown;
  canceller: unknown;
  cursorFn?: unknown;
}

export function readPool(instances: Sql[]): Sql {
  const [first] = instances;
  if (!first) throw new Error('readPool needs at least one postgres.js instance');
  const running = instances.map(() => 0);
  const pick = () => {
    for (let i = 0; i < running.length; i++) if ((running[i] as number) < DEPTH) return i;
    let best = 0;
    for (let i = 1; i < running.length; i++) if ((running[i] as number) < (running[best] as number)) best = i;
    return best;
  };
  const hold = (i: number, weight: number) => {
    running[i] = (running[i] as number) + weight;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      running[i] = (running[i] as number) - weight;
    };
  };
  // Each instance's own query runner and canceller, taken from a query built on it and never run.
  type Call = (...args: unknown[]) => unknown;
  const probes = instances.map((instance) => (instance as unknown as Call)(Object.assign([''], { raw: [''] })) as RunnableQuery);
  /**
   * Builds a query anywhere and picks its instance when it runs, so queries made together are
   * counted together (postgres.js runs a query a tick after it is awaited). A query nested in another as a
   * fragment never runs here. It counts as running until it settles; a cursor's promise settles
   * only through its iterator, so cursors are not counted (the pick is an estimate, not a limit).
   */
  const routed = <Q>(query: Q): Q => {
    (query as unknown as RunnableQuery).handler = (q) => {
      const i = pick();
      const probe = probes[i] as RunnableQuery;
      q.canceller = probe.canceller;
      if (!q.cursorFn) {
        const done = hold(i, 1);
        // The native `then`: Query's own would run the query a second time.
        Promise.prototype.then.call(q, done, done);
      }
      return probe.handler(q);
    };
    return query;
  };
  const at = (i: number) => instances[i] as unknown as Call & { unsafe: Call; begin: Call; close: () => Promise<void> };

  function pooled(...args: unknown[]) {
    const strings = args[0] as { raw?: unknown } | undefined;
    return strings && Array.isArray(strings.raw) ? routed(at(0)(...args)) : at(0)(...args);
  }

  const overrides = {
    unsafe: (...args: unknown[]) => routed(at(0).unsafe(...args)),
    begin: (...args: unknown[]) => {
      const i = pick();
      const done = hold(i, HELD);
      const transaction = at(i).begin(...args) as Promise<unknown>;
      transaction.then(done, done);
      return transaction;
    },
    reserve: async () => {
      const i = pick();
      const done = hold(i, HELD);
      try {
        const session = await (instances[i] as Sql).reserve();
        const release = session.release;
        session.release = () => {
          done();
          release();
        };
        return session;
      } catch (error) {
        done();
        throw error;
      }
    },
    end: async (options?: { timeout?: number }) => {
      await Promise.all(instances.map((instance) => instance.end(options)));
    },
    close: async () => {
      await Promise.all(instances.map((_, i) => at(i).close()));
    },
  };
  return Object.assign(pooled, first, overrides) as unknown as Sql;
}
