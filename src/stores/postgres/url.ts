/** The PostgreSQL store URL and its options (schema, poolSize, pollMs). */
import { InvalidStoreUrlError } from '../../core/errors.js';
import { assertSchemaName } from './schema.js';
import type { PostgresStoreOptions } from './store.js';

export function parseUrl(options: PostgresStoreOptions): { url: string; schema: string; poolSize: number; pollMs: number } {
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch (error) {
    throw new InvalidStoreUrlError(String(options.url), `it is not a URL (${(error as Error).message})`);
  }
  const take = (name: string): string | null => {
    const value = parsed.searchParams.get(name);
    parsed.searchParams.delete(name);
    return value;
  };
  const positiveInt = (name: string, raw: string | null): number | undefined => {
    if (raw === null) return undefined;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new InvalidStoreUrlError(options.url, `${name} must be a positive integer, got '${raw}'`);
    return value;
  };
  const urlSchema = take('schema');
  const urlPool = positiveInt('poolSize', take('poolSize'));
  const urlPoll = positiveInt('pollMs', take('pollMs'));
  const schema = options.schema ?? urlSchema ?? 'logline';
  try {
    assertSchemaName(schema);
  } catch {
    throw new InvalidStoreUrlError(options.url, `schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]{0,62}), got '${schema}'`);
  }
  return { url: parsed.toString(), schema, poolSize: options.poolSize ?? urlPool ?? 10, pollMs: options.pollMs ?? urlPoll ?? 1000 };
}
