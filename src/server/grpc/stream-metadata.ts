/**
 * KurrentDB keeps a stream's metadata as `$metadata` events in the stream `$$<stream>`; Logline
 * keeps it as the stream's retention settings (docs/lifecycle.md). The keys both know map onto
 * each other: `$maxCount` ↔ maxCount, `$maxAge` (seconds) ↔ maxAgeSeconds, and `$tb` (a revision:
 * events below it are hidden) ↔ truncateBefore (a version: revision + 1). Other keys (`$acl`,
 * `$cacheControl`, custom ones) are not kept (docs/kurrentdb.md).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { JsonObject, JsonValue, StreamLifecycle, StreamMetadata } from '../../core/types.js';

const PREFIX = '$$';

/** The stream whose metadata `$$<stream>` holds, or undefined for any other stream name. */
export const metadataTarget = (stream: string): string | undefined => (stream.startsWith(PREFIX) ? stream.slice(PREFIX.length) : undefined);

const isObject = (value: JsonValue): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Logline settings from the data of a `$metadata` event (validated again by the store). */
export function settingsFromKurrent(data: JsonValue): StreamMetadata {
  if (!isObject(data)) throw new InvalidArgumentError('stream metadata', `got ${JSON.stringify(data)}`, 'a JSON object');
  const settings: StreamMetadata = {};
  const maxCount = data.$maxCount;
  const maxAge = data.$maxAge;
  const truncateBefore = data.$tb;
  if (maxCount !== undefined && maxCount !== null) settings.maxCount = maxCount as number;
  if (maxAge !== undefined && maxAge !== null) settings.maxAgeSeconds = maxAge as number;
  // $tb 0 hides nothing: no setting. Anything not a number is left for the store to refuse.
  if (truncateBefore !== undefined && truncateBefore !== null && truncateBefore !== 0) {
    settings.truncateBefore = typeof truncateBefore === 'number' ? truncateBefore + 1 : (truncateBefore as unknown as number);
  }
  return settings;
}

/** The data of the `$metadata` event a KurrentDB client reads, or undefined when nothing is set. */
export function kurrentFromSettings(lifecycle: StreamLifecycle): JsonObject | undefined {
  const data: JsonObject = {};
  if (lifecycle.maxCount !== undefined) data.$maxCount = lifecycle.maxCount;
  if (lifecycle.maxAgeSeconds !== undefined) data.$maxAge = lifecycle.maxAgeSeconds;
  if (lifecycle.truncateBefore !== undefined) data.$tb = lifecycle.truncateBefore - 1;
  return Object.keys(data).length > 0 ? data : undefined;
}
