/**
 * Retention and deletion rules every backend shares (docs/lifecycle.md#retention-and-deletion):
 * which events of a stream a read may still see, given the stream's metadata, deletion and
 * current version. Backends store a LifecycleRecord per stream and apply these rules (the SQL
 * backends translate them into the WHERE clause of their reads and scavenges).
 */
import { InvalidArgumentError } from './errors.js';
import type { RecordedEvent, StreamLifecycle, StreamMetadata } from './types.js';

/** What a backend stores per stream. */
export interface LifecycleRecord extends StreamMetadata {
  /** The version a soft delete hid up to; the stream reads as deleted while its version is still this. */
  deletedVersion?: number;
  /** Hard-deleted: no append is ever accepted again. */
  tombstoned?: boolean;
}

const METADATA_KEYS = ['maxCount', 'maxAgeSeconds', 'truncateBefore'] as const;

/** Validates what a caller hands to setStreamMetadata; returns only the keys that are set. */
export function normalizeStreamMetadata(input: unknown): StreamMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidArgumentError(
      'stream metadata',
      `got ${JSON.stringify(input)}`,
      'an object { maxCount?, maxAgeSeconds?, truncateBefore? }',
    );
  }
  const out: StreamMetadata = {};
  for (const [key, value] of Object.entries(input)) {
    if (!(METADATA_KEYS as readonly string[]).includes(key)) {
      throw new InvalidArgumentError('stream metadata', `unknown key '${key}'`, 'only maxCount, maxAgeSeconds and truncateBefore');
    }
    if (value === undefined || value === null) continue;
    if (!(typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= 2_147_483_647)) {
      throw new InvalidArgumentError(key, `got ${JSON.stringify(value)}`, 'an integer from 1 to 2147483647');
    }
    out[key as (typeof METADATA_KEYS)[number]] = value;
  }
  return out;
}

/** The lowest stream version a read may see (Infinity for a tombstoned stream). */
export function firstVisibleVersion(record: LifecycleRecord | undefined, version: number): number {
  if (!record) return 1;
  if (record.tombstoned) return Number.POSITIVE_INFINITY;
  return Math.max(
    1,
    record.truncateBefore ?? 1,
    record.deletedVersion === undefined ? 1 : record.deletedVersion + 1,
    record.maxCount === undefined ? 1 : version - record.maxCount + 1,
  );
}

/** ISO time before which events are hidden by maxAgeSeconds, or undefined. */
export const ageCutoff = (record: LifecycleRecord | undefined, nowMs: number): string | undefined =>
  record?.maxAgeSeconds === undefined ? undefined : new Date(nowMs - record.maxAgeSeconds * 1000).toISOString();

/** Whether a read may see `event` of a stream now at `version`. */
export function isVisible(event: RecordedEvent, record: LifecycleRecord | undefined, version: number, nowMs: number): boolean {
  if (!record) return true;
  if (event.streamVersion < firstVisibleVersion(record, version)) return false;
  const cutoff = ageCutoff(record, nowMs);
  return cutoff === undefined || event.recordedAt >= cutoff;
}

/** What getStreamMetadata answers for a stream now at `version`. */
export function lifecycleOf(record: LifecycleRecord | undefined, version: number): StreamLifecycle {
  if (!record) return {};
  const out: StreamLifecycle = {};
  for (const key of METADATA_KEYS) if (record[key] !== undefined) out[key] = record[key];
  if (record.tombstoned) out.deleted = 'hard';
  else if (record.deletedVersion !== undefined && record.deletedVersion === version && version > 0) out.deleted = 'soft';
  return out;
}

/** Whether the record changes what reads see (a record with nothing left in it can be dropped). */
export const hasEffect = (record: LifecycleRecord): boolean =>
  record.tombstoned === true || record.deletedVersion !== undefined || METADATA_KEYS.some((key) => record[key] !== undefined);

/** Checks the version `restoreStreamStart` is given: the stream's versions 1..version are gone. */
export function assertStartVersion(version: unknown): asserts version is number {
  if (!(typeof version === 'number' && Number.isSafeInteger(version) && version >= 1 && version <= 2_147_483_647)) {
    throw new InvalidArgumentError('version', `got ${JSON.stringify(version)}`, 'an integer from 1 to 2147483647');
  }
}
