/**
 * API keys with read/write rights per stream-id prefix. Keys come from a JSON file or the
 * LOGLINE_API_KEYS environment variable:
 *   {"keys":[{"name":"ingest","key":"…","read":["orders-"],"write":["orders-"]}]}
 * A right of "*" (or "") covers every stream; admin-wide views ($all, stats) need read on "*".
 * `"metrics": true` lets a key (a Prometheus scraper) read /metrics without any stream right.
 * `"admin": true` lets a key forget a data subject (DELETE /v1/subjects/{subject}, crypto-shredding):
 * no stream right implies it, not even write on "*".
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
import { ForbiddenError, UnauthorizedError } from './http-errors.js';

const keySchema = z.strictObject({
  name: z.string().min(1),
  key: z.string().min(16, { error: 'a key must be at least 16 characters' }),
  read: z.array(z.string()).default([]),
  write: z.array(z.string()).default([]),
  metrics: z.boolean().default(false),
  admin: z.boolean().default(false),
});
export const keysFileSchema = z.strictObject({ keys: z.array(keySchema).min(1) });

export interface ApiKey {
  name: string;
  read: string[];
  write: string[];
  /** May read /metrics (store-wide counts, consumer names) even without read on every stream. */
  metrics?: boolean;
  /** May forget data subjects (docs/lifecycle.md#forget-a-person). */
  admin?: boolean;
}

interface StoredKey extends ApiKey {
  digest: Buffer;
}

export interface KeyRing {
  /** The key a request's Authorization header (or api_key query parameter) names; throws 401. */
  authenticate(header: string | undefined, queryKey: string | undefined): ApiKey;
}

const digest = (key: string) => createHash('sha256').update(key).digest();
const normalize = (prefixes: string[]) => prefixes.map((p) => (p === '*' ? '' : p));

export function parseKeys(json: string, source: string): KeyRing {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new InvalidArgumentError(`API keys (${source})`, `not JSON: ${(error as Error).message}`, '{"keys":[{name,key,read,write}]}');
  }
  const parsed = keysFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidArgumentError(
      `API keys (${source})`,
      parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      '{"keys":[{name,key,read,write}]}',
    );
  }
  const keys: StoredKey[] = parsed.data.keys.map((k) => ({
    name: k.name,
    read: normalize(k.read),
    write: normalize(k.write),
    metrics: k.metrics,
    admin: k.admin,
    digest: digest(k.key),
  }));
  return {
    authenticate(header, queryKey) {
      const bearer = header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1] ?? queryKey;
      if (!bearer) throw new UnauthorizedError(header ? 'The Authorization header is not a Bearer token' : 'No API key');
      const given = digest(bearer);
      // Compare digests in constant time, and always walk every key.
      let found: StoredKey | undefined;
      for (const key of keys) if (timingSafeEqual(key.digest, given)) found = key;
      if (!found) throw new UnauthorizedError('Unknown API key');
      return { name: found.name, read: found.read, write: found.write, metrics: found.metrics, admin: found.admin };
    },
  };
}

/** Keys from --keys <file>, else LOGLINE_API_KEYS_FILE, else LOGLINE_API_KEYS (inline JSON); undefined = no auth. */
export function loadKeys(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KeyRing | undefined {
  const path = file ?? env.LOGLINE_API_KEYS_FILE;
  if (path) return parseKeys(readFileSync(path, 'utf8'), path);
  if (env.LOGLINE_API_KEYS) return parseKeys(env.LOGLINE_API_KEYS, 'LOGLINE_API_KEYS');
  return undefined;
}

/** Whether `key` (undefined = auth off) may act on every stream whose id starts with `prefix`. */
export function allows(key: ApiKey | undefined, action: 'read' | 'write', prefix: string): boolean {
  if (!key) return true;
  return key[action].some((right) => prefix.startsWith(right));
}

export function requireRight(key: ApiKey | undefined, action: 'read' | 'write', prefix: string, target: string): void {
  if (!allows(key, action, prefix)) throw new ForbiddenError(action, target);
}

/** Administrative operations (forgetting a subject) need the key's `admin` right; without keys, anyone may. */
export function requireAdmin(key: ApiKey | undefined, target: string): void {
  if (key && !key.admin) throw new ForbiddenError('admin', target);
}
