/**
 * openStore(url): one entry point for every backend. Backends are imported on demand, so a
 * driver (better-sqlite3, postgres, @nats-io/*) is only loaded when its URL scheme is used.
 *
 *   memory:                                   in-process, for tests and examples
 *   sqlite:./data/logline.db?synchronous=full embedded file (also sqlite::memory:)
 *   postgres://user@host:5432/db?schema=logline
 *   nats://127.0.0.1:4222  nats://a:4222,b:4222,c:4222?replicas=3&stream=LOGLINE&prefix=logline
 */
import { InvalidStoreUrlError } from './errors.js';
import { masterKeyFromEnv } from './personal-data.js';
import type { EventStore, StoreLimits } from './types.js';

export interface OpenStoreOptions {
  limits?: Partial<StoreLimits>;
  /**
   * Wraps every subject key of personal data (32 bytes, AES-256-GCM). Default: LOGLINE_MASTER_KEY
   * (base64), else none. See docs/lifecycle.md#forget-a-person.
   */
  masterKey?: Uint8Array;
}

const SQLITE_SYNC = ['off', 'normal', 'full', 'extra'] as const;

function intParam(url: string, params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new InvalidStoreUrlError(url, `${name} must be a non-negative integer, got '${raw}'`);
  return value;
}

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<EventStore> {
  if (typeof url !== 'string' || url.length === 0) throw new InvalidStoreUrlError(String(url), 'it is empty');
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  const masterKey = options.masterKey ?? masterKeyFromEnv();
  switch (scheme) {
    case 'memory:': {
      const { createMemoryStore } = await import('../stores/memory/index.js');
      return createMemoryStore({ limits: options.limits, masterKey });
    }
    case 'sqlite:': {
      const rest = url.slice('sqlite:'.length).replace(/^\/\/(?=[./~])/, '');
      const [path = '', query = ''] = rest.split('?', 2);
      if (!path) throw new InvalidStoreUrlError(url, 'the file path is missing');
      const params = new URLSearchParams(query);
      const synchronous = params.get('synchronous') ?? 'full';
      if (!(SQLITE_SYNC as readonly string[]).includes(synchronous)) {
        throw new InvalidStoreUrlError(url, `synchronous must be one of ${SQLITE_SYNC.join(', ')}, got '${synchronous}'`);
      }
      const { openSqliteStore } = await import('../stores/sqlite/index.js');
      return openSqliteStore({
        path: decodeURIComponent(path),
        synchronous: synchronous as (typeof SQLITE_SYNC)[number],
        busyTimeoutMs: intParam(url, params, 'busyTimeoutMs'),
        pollMs: intParam(url, params, 'pollMs'),
        limits: options.limits,
        masterKey,
      });
    }
    case 'postgres:':
    case 'postgresql:': {
      const { openPostgresStore } = await import('../stores/postgres/index.js');
      return openPostgresStore({ url, limits: options.limits, masterKey });
    }
    case 'nats:': {
      const { openNatsStore } = await import('../stores/nats/index.js');
      return openNatsStore({ url, limits: options.limits, masterKey });
    }
    default:
      throw new InvalidStoreUrlError(url, scheme ? `unknown scheme '${scheme}'` : 'it has no scheme');
  }
}
