/**
 * What `logline export` writes about retention and deletion, and how `logline import` puts it back
 * (docs/lifecycle.md#restoring-retention-and-deletions). An export holds only visible events, so a
 * stream can start past version 1 in it; its lifecycle lines carry the settings and deletions.
 */
import { InvalidArgumentError, WrongExpectedVersionError } from '../core/errors.js';
import { normalizeStreamMetadata } from '../core/retention.js';
import type { AppendResult, NewEvent, StreamLifecycleInfo, StreamMetadata } from '../core/types.js';
import { RemoteError, type Target } from './targets.js';

/** One export line about a stream's lifecycle: `{"lifecycle":{streamId,version,maxCount?,…,deleted?}}`. */
export interface LifecycleLine {
  lifecycle: StreamLifecycleInfo;
}

export const isLifecycleLine = (value: unknown): value is LifecycleLine =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && 'lifecycle' in value;

/** Checks a lifecycle line of an export (line `line` of the file). */
export function parseLifecycleLine(value: LifecycleLine, line: number): StreamLifecycleInfo {
  const expected = 'a lifecycle line as written by `logline export`: {"lifecycle":{"streamId","version",…}}';
  const record = value.lifecycle as unknown;
  if (Object.keys(value).length !== 1 || typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new InvalidArgumentError(`line ${line}`, 'a lifecycle line that is not {"lifecycle":{…}}', expected);
  }
  const { streamId, version, deleted, ...metadata } = record as Record<string, unknown>;
  if (typeof streamId !== 'string') throw new InvalidArgumentError(`line ${line}`, 'a lifecycle without streamId', expected);
  if (!(typeof version === 'number' && Number.isSafeInteger(version) && version >= 0)) {
    throw new InvalidArgumentError(`line ${line}`, `a lifecycle version ${JSON.stringify(version)}`, expected);
  }
  if (deleted !== undefined && deleted !== 'soft' && deleted !== 'hard') {
    throw new InvalidArgumentError(`line ${line}`, `deleted ${JSON.stringify(deleted)}`, "'soft' or 'hard'");
  }
  let settings: StreamMetadata;
  try {
    settings = normalizeStreamMetadata(metadata);
  } catch (error) {
    throw new InvalidArgumentError(`line ${line}`, `bad settings (${(error as Error).message})`, expected);
  }
  return { streamId, version, ...settings, ...(deleted ? { deleted } : {}) };
}

/** The actual version a refused append reports (WrongExpectedVersion from a store or a server). */
const actualVersionOf = (error: unknown): number | undefined => {
  if (error instanceof WrongExpectedVersionError) return error.actual;
  if (error instanceof RemoteError && error.body.error === 'WrongExpectedVersion' && typeof error.body.actual === 'number') {
    return error.body.actual;
  }
  return undefined;
};

/**
 * Appends an export's batch where it stood. A stream the export keeps from version k > 1 on
 * (retention, a delete or a scavenge took the ones before) does not exist here yet: it is started
 * at k - 1 first, whether or not the stream has a lifecycle line (a scavenge can leave a stream
 * starting at k with its settings cleared since). Answers whether it started the stream.
 */
export async function appendAt(
  target: Target,
  stream: string,
  events: NewEvent[],
  expectedVersion: number,
): Promise<{ result: AppendResult; started: boolean }> {
  try {
    return { result: await target.append(stream, events, expectedVersion), started: false };
  } catch (error) {
    if (expectedVersion === 0 || actualVersionOf(error) !== 0) throw error;
    await target.restoreStreamStart(stream, expectedVersion);
    return { result: await target.append(stream, events, expectedVersion), started: true };
  }
}

const METADATA_KEYS = ['maxCount', 'maxAgeSeconds', 'truncateBefore'] as const;
const metadataOf = (from: StreamMetadata): StreamMetadata =>
  Object.fromEntries(METADATA_KEYS.filter((key) => from[key] !== undefined).map((key) => [key, from[key]]));

/**
 * Applies one lifecycle line after the stream's events are in: a stream the export kept no event
 * of starts at its version, then its settings, then its deletion (soft only where the stream still
 * stands at the deleted version: one written after the delete was no longer deleted). Answers
 * whether anything changed (a re-import changes nothing).
 */
export async function applyLifecycle(target: Target, lifecycle: StreamLifecycleInfo): Promise<boolean> {
  const { streamId, version, deleted } = lifecycle;
  const current = await target.getMetadata(streamId);
  // A tombstone is forever: this line was applied by an earlier import (it is set last).
  if (current.deleted === 'hard') return false;
  let changed = false;
  let currentVersion = current.version;
  if (currentVersion === 0 && version > 0) {
    await target.restoreStreamStart(streamId, version);
    currentVersion = version;
    changed = true;
  }
  const wanted = metadataOf(lifecycle);
  if (JSON.stringify(metadataOf(current)) !== JSON.stringify(wanted)) {
    await target.setMetadata(streamId, wanted);
    changed = true;
  }
  if (deleted === 'hard') {
    await target.deleteStream(streamId, { hard: true });
    changed = true;
  } else if (deleted === 'soft' && current.deleted !== 'soft' && currentVersion <= version) {
    await target.deleteStream(streamId, { expectedVersion: version });
    changed = true;
  }
  return changed;
}
