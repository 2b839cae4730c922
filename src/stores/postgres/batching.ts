/**
 * Coalesced appends: what one commit carries (its limits), and how a batch of queued appends
 * is encoded as the parameters of the one `append_batch` statement. The queue itself lives in
 * the store (store.ts), which owns the writer connection.
 */

import type { Span } from '../../core/tracing.js';
import type { AppendResult, ExpectedVersion } from '../../core/types.js';
import type { PreparedEvent } from '../../core/validation.js';
import { arrayLiteral } from './arrays.js';
import { MAX_INT } from './rows.js';

export interface PendingAppend {
  stream: string;
  expected: ExpectedVersion;
  events: PreparedEvent[];
  bytes: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
  /** The append's trace span, when tracing records: it learns the size of the commit it joined. */
  span: Span | undefined;
}

export interface BatchRow {
  ord: number;
  status: 'ok' | 'version' | 'stored';
  actual: number;
  version: number;
  last_position: string;
  recorded_at: string;
}

export type Outcome = { ok: true; result: AppendResult } | { ok: false; error: unknown } | { ok: 'stored' };

/** Most events / JSON bytes one coalesced commit carries; later appends wait for the next one. */
export const MAX_EVENTS_PER_COMMIT = 20_000;

export const MAX_BYTES_PER_COMMIT = 32 * 1024 * 1024;

const encodeExpected = (expected: ExpectedVersion): number =>
  expected === 'any' ? -1 : expected === 'no_stream' ? -2 : expected === 'exists' ? -3 : Math.min(expected, MAX_INT);

/**
 * The parameters of `append_batch`: per-append and per-event arrays as text, data and metadata as
 * JSON arrays spliced from the already-serialised JSON (no second stringify, one parse each).
 */
export function batchParams(batch: PendingAppend[]): [string, string, string, string, string, string, string, string] {
  const ids: string[] = [];
  const types: string[] = [];
  const at: Array<string | undefined> = [];
  const data: string[] = [];
  const metadata: string[] = [];
  for (const pending of batch) {
    for (const e of pending.events) {
      ids.push(e.id);
      types.push(e.type);
      at.push(e.occurredAt);
      data.push(e.dataJson);
      metadata.push(e.metadataJson);
    }
  }
  return [
    arrayLiteral(batch.map((p) => p.stream)),
    arrayLiteral(batch.map((p) => encodeExpected(p.expected))),
    arrayLiteral(batch.map((p) => p.events.length)),
    arrayLiteral(ids),
    arrayLiteral(types),
    arrayLiteral(at),
    `[${data.join(',')}]`,
    `[${metadata.join(',')}]`,
  ];
}
