/**
 * Mapping between log messages and RecordedEvents.
 *
 * One message per append. Its payload is a JSON array of the append's events
 * (`{id, type, data, metadata, occurredAt?}`); its headers say where it sits:
 *   Logline-Stream   the stream id (the subject holds it encoded)
 *   Logline-Version  the stream version of the message's LAST event
 *   Logline-Prev     the log sequence of the stream's previous message (0 for the first): lets a
 *                    backward read walk the stream without a scan
 *   Logline-Deleted  only on a deletion marker (no events): 'soft' or 'hard' (see retention.ts)
 * recordedAt is the message's JetStream timestamp (set by the stream leader when it stored it).
 *
 * Positions: message sequence s holding n events gives its events the positions
 * s·M − (n−1) … s·M, with M = POSITION_SCALE. So the last event of a message has position s·M
 * (an append's result and the head position need no extra read), positions strictly increase
 * with the sequence (which never skips), and message s holds exactly the positions in
 * ((s−1)·M, s·M]: a reader resuming after p starts at sequence ⌊p / M⌋ + 1.
 */
import type { MsgHdrs } from '@nats-io/transport-node';
import type { JsonObject, JsonValue, RecordedEvent } from '../../core/types.js';
import type { PreparedEvent } from '../../core/validation.js';

/** Positions per message: an append may carry at most this many events. */
export const POSITION_SCALE = 1_000_000n;
export const MAX_EVENTS_PER_MESSAGE = Number(POSITION_SCALE);

export const HEADER_STREAM = 'Logline-Stream';
export const HEADER_VERSION = 'Logline-Version';
export const HEADER_PREV = 'Logline-Prev';
export const HEADER_DELETED = 'Logline-Deleted';

/** The position of the last event of message `seq`. */
export const lastPositionOf = (seq: number): bigint => BigInt(seq) * POSITION_SCALE;

/** The first message sequence that can hold an event with position > `after`. */
export const firstSeqAfter = (after: bigint): number => Number(after / POSITION_SCALE) + 1;

/** The message payload: the events' already-serialised JSON spliced into one array. */
export function encodeEvents(events: PreparedEvent[]): string {
  let out = '[';
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as PreparedEvent;
    if (i) out += ',';
    out += `{"id":"${e.id}","type":${JSON.stringify(e.type)},"data":${e.dataJson},"metadata":${e.metadataJson}`;
    if (e.occurredAt !== undefined) out += `,"occurredAt":"${e.occurredAt}"`;
    out += '}';
  }
  return `${out}]`;
}

interface StoredEvent {
  id: string;
  type: string;
  data: JsonValue;
  metadata: JsonObject;
  occurredAt?: string;
}

/** What a reader needs from a message, whether it came from a consumer or a direct get. */
export interface LogMessage {
  seq: number;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
  /** Milliseconds since the epoch. */
  timeMs: number;
}

export interface MessageHead {
  stream: string;
  /** Stream version of the message's last event. */
  version: number;
  /** Sequence of the stream's previous message, 0 if none. */
  prev: number;
  /** Set on a deletion marker. */
  deleted: 'soft' | 'hard' | undefined;
}

export function headOf(message: LogMessage): MessageHead {
  const h = message.headers;
  return {
    stream: h?.get(HEADER_STREAM) ?? '',
    version: Number(h?.get(HEADER_VERSION) ?? 0),
    prev: Number(h?.get(HEADER_PREV) ?? 0),
    deleted: (h?.get(HEADER_DELETED) || undefined) as MessageHead['deleted'],
  };
}

const decoder = new TextDecoder();

export function decodeMessage(message: LogMessage): RecordedEvent[] {
  // Only the two headers it needs (each look-up walks the header keys), not all of headOf.
  const h = message.headers;
  const stream = h?.get(HEADER_STREAM) ?? '';
  const version = Number(h?.get(HEADER_VERSION) ?? 0);
  const stored = JSON.parse(decoder.decode(message.data)) as StoredEvent[];
  const recordedAt = new Date(message.timeMs).toISOString();
  const n = stored.length;
  const last = lastPositionOf(message.seq);
  const out: RecordedEvent[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = stored[i] as StoredEvent;
    out[i] = {
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      occurredAt: e.occurredAt ?? recordedAt,
      streamId: stream,
      streamVersion: version - n + 1 + i,
      position: last - BigInt(n - 1 - i),
      recordedAt,
    };
  }
  return out;
}
