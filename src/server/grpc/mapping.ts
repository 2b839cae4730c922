/**
 * Mapping between KurrentDB's event model and Logline's (docs/kurrentdb.md):
 * - revision = stream version − 1; commit and prepare position = global position;
 * - `created` = recordedAt in 100-ns ticks since the Unix epoch;
 * - JSON data (`application/json`) is stored as the JSON value; any other content type is stored
 *   as a base64 string with the content type in the metadata key `$contentType`;
 * - custom metadata that is a JSON object becomes the metadata; anything else is kept as base64
 *   in `$customMetadata`. Reads give back the same bytes and content type.
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.js';
import type { JsonObject, JsonValue, NewEvent, RecordedEvent } from '../../core/types.js';
import type { Protocol, SharedPb, StreamsPb } from './protocol.js';

export const JSON_CONTENT_TYPE = 'application/json';
export const CONTENT_TYPE_KEY = '$contentType';
export const RAW_METADATA_KEY = '$customMetadata';
const TICKS_PER_MS = 10_000n;

/** A UUID message (string or two signed big-endian 64-bit halves) as a lowercase 8-4-4-4-12 string. */
export function uuidFromMessage(uuid: SharedPb.UUID | undefined): string | undefined {
  if (!uuid) return undefined;
  if (uuid.hasString()) return uuid.getString().toLowerCase();
  const structured = uuid.getStructured();
  if (!structured) return undefined;
  const half = (bits: string) => BigInt.asUintN(64, BigInt(bits)).toString(16).padStart(16, '0');
  const hex = half(structured.getMostSignificantBits()) + half(structured.getLeastSignificantBits());
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function uuidMessage(protocol: Protocol, id: string, structured: boolean): SharedPb.UUID {
  const uuid = new protocol.shared.UUID();
  if (!structured) return uuid.setString(id);
  const hex = id.replace(/-/g, '');
  const half = (part: string) => BigInt.asIntN(64, BigInt(`0x${part}`)).toString();
  const bits = new protocol.shared.UUID.Structured();
  bits.setMostSignificantBits(half(hex.slice(0, 16)));
  bits.setLeastSignificantBits(half(hex.slice(16)));
  return uuid.setStructured(bits);
}

export const streamNameOf = (identifier: SharedPb.StreamIdentifier | undefined): string =>
  Buffer.from(identifier?.getStreamName_asU8() ?? new Uint8Array()).toString('utf8');

export function streamIdentifier(protocol: Protocol, stream: string): SharedPb.StreamIdentifier {
  return new protocol.shared.StreamIdentifier().setStreamName(Buffer.from(stream, 'utf8'));
}

function parseJsonBytes(bytes: Uint8Array, what: string, index: number): JsonValue {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    throw new InvalidArgumentError(
      `event #${index} ${what}`,
      `it is not valid JSON (${(error as Error).message})`,
      "JSON, or a content type other than 'application/json' for binary data",
    );
  }
}

const isJsonObject = (value: JsonValue): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** One proposed message of an Append as a Logline NewEvent. */
export function newEventFromProposed(message: StreamsPb.AppendReq.ProposedMessage, index: number): NewEvent {
  const meta = message.getMetadataMap();
  const type = meta.get('type') ?? '';
  const contentType = meta.get('content-type') ?? JSON_CONTENT_TYPE;
  const dataBytes = message.getData_asU8();
  const metadata: JsonObject = {};
  const raw = message.getCustomMetadata_asU8();
  if (raw.length > 0) {
    let parsed: JsonValue | undefined;
    try {
      parsed = JSON.parse(Buffer.from(raw).toString('utf8')) as JsonValue;
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined && isJsonObject(parsed)) Object.assign(metadata, parsed);
    else metadata[RAW_METADATA_KEY] = Buffer.from(raw).toString('base64');
  }
  let data: JsonValue;
  if (contentType === JSON_CONTENT_TYPE) {
    // An empty JSON payload has no value: stored as null.
    data = dataBytes.length === 0 ? null : parseJsonBytes(dataBytes, 'data', index);
  } else {
    data = Buffer.from(dataBytes).toString('base64');
    metadata[CONTENT_TYPE_KEY] = contentType;
  }
  return { id: uuidFromMessage(message.getId()) ?? randomUUID(), type, data, metadata };
}

/** What a Logline event looks like on the KurrentDB wire: content type, data bytes, custom metadata bytes. */
export function wirePayload(event: RecordedEvent): { contentType: string; data: Buffer; customMetadata: Buffer } {
  const { [CONTENT_TYPE_KEY]: storedType, [RAW_METADATA_KEY]: rawMetadata, ...rest } = event.metadata;
  const binary = typeof storedType === 'string' && typeof event.data === 'string';
  const contentType = binary ? storedType : JSON_CONTENT_TYPE;
  const data = binary ? Buffer.from(event.data as string, 'base64') : Buffer.from(JSON.stringify(event.data), 'utf8');
  const customMetadata =
    typeof rawMetadata === 'string'
      ? Buffer.from(rawMetadata, 'base64')
      : Object.keys(rest).length > 0
        ? Buffer.from(JSON.stringify(rest), 'utf8')
        : Buffer.alloc(0);
  return { contentType, data, customMetadata };
}

export const ticksSinceEpoch = (iso: string): string => (BigInt(Date.parse(iso)) * TICKS_PER_MS).toString();

/** A Logline event as a ReadResp.ReadEvent (revision = version − 1, positions = global position). */
export function readEventMessage(protocol: Protocol, event: RecordedEvent, structuredIds: boolean): StreamsPb.ReadResp.ReadEvent {
  const { contentType, data, customMetadata } = wirePayload(event);
  const position = event.position.toString();
  const recorded = new protocol.streams.ReadResp.ReadEvent.RecordedEvent()
    .setId(uuidMessage(protocol, event.id, structuredIds))
    .setStreamIdentifier(streamIdentifier(protocol, event.streamId))
    .setStreamRevision(String(event.streamVersion - 1))
    .setCommitPosition(position)
    .setPreparePosition(position)
    .setData(data)
    .setCustomMetadata(customMetadata);
  const meta = recorded.getMetadataMap();
  meta.set('type', event.type);
  meta.set('content-type', contentType);
  meta.set('created', ticksSinceEpoch(event.recordedAt));
  return new protocol.streams.ReadResp.ReadEvent().setEvent(recorded).setCommitPosition(position);
}
