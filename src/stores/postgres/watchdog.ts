/** The lost-query watchdog for postgres.js, and which errors mean a lost connection. */

/** Errors after which the connection is gone but the server may be fine: worth retrying. */
export function isConnectionError(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '');
  return (
    [
      'CONNECTION_CLOSED',
      'CONNECT_TIMEOUT',
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'ETIMEDOUT',
      '57P01',
      '57P02',
      '57P03',
      '53300',
    ].includes(code) || code.startsWith('08')
  );
}

/**
 * postgres.js 3.4.9 keeps a per-connection row counter that only a completed command resets
 * (porsager/postgres#1119, #1181). When a query dies after some of its rows arrived (its
 * session terminated, a statement timeout), the next query on that connection object, even
 * after a reconnect, stores its rows from the stale offset on: the result has leading holes, and
 * `const [row] = …` reads undefined. The rows that are there are complete (the command finished),
 * so the result is compacted. Inside a transaction BEGIN's own completion resets the counter first.
 */
export function dense<T>(result: T): T {
  if (!Array.isArray(result) || result.length === 0 || 0 in result) return result;
  return result.filter(() => true) as T;
}

/** How long a query may stay unsettled after a connection of the pool closed before we call it lost. */
const LOST_QUERY_GRACE_MS = 1500;
const RECENT_CLOSE_MS = 3000;

/**
 * postgres.js 3.4.9 sometimes never settles a query whose connection was killed mid-flight
 * (seen with pg_terminate_backend; see porsager/postgres#1097 and #1142). `watch` settles such a
 * query with a CONNECTION_CLOSED error once any connection of the pool closed while it was in
 * flight and it did not settle within a grace period. Callers only retry operations that are safe
 * to repeat: reads, and appends (a re-sent append resolves as an idempotent retry).
 */
export class ConnectionWatch {
  private readonly waiters = new Set<() => void>();
  private lastCloseAt = Number.NEGATIVE_INFINITY;

  /** postgres.js `onclose`: a connection of the pool closed. */
  readonly closed = (): void => {
    this.lastCloseAt = performance.now();
    for (const wake of this.waiters) wake();
  };

  watch<T>(query: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onClose = () => {
        timer ??= setTimeout(() => {
          done();
          reject(Object.assign(new Error('the connection closed and the query never settled'), { code: 'CONNECTION_CLOSED', lost: true }));
        }, LOST_QUERY_GRACE_MS);
      };
      const done = () => {
        this.waiters.delete(onClose);
        clearTimeout(timer);
      };
      this.waiters.add(onClose);
      // A query sent right after a close may land on a connection that is still reconnecting
      // (where the lost promises come from), so it is watched from the start.
      if (performance.now() - this.lastCloseAt < RECENT_CLOSE_MS) onClose();
      query.then(
        (value) => {
          done();
          resolve(dense(value));
        },
        (error) => {
          done();
          reject(error);
        },
      );
    });
  }
}
