/**
 * The inbound side of connectors: `POST /v1/ingest/{stream}` takes events from producers outside
 * Logline, each with the producer's own id (any 1–200 visible ASCII characters). That id becomes
 * the event id through a name-based UUID (version 5, RFC 9562) of the stream and the producer id,
 * so a producer that retries a request sends the same event ids, and the store's idempotency by
 * event id (src/core/idempotency.ts) makes the retry return the original result and store nothing.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';
import type { NewEvent } from '../core/types.js';
import { ingestRequestSchema, parseWith } from './schemas.js';

/** The namespace of ingest ids: fixed forever, or retries after an upgrade would store twice. */
export const INGEST_NAMESPACE = '1b4e28ba-2fa1-4d6b-9c3e-6a2f0c8d5e71';
/** Metadata key that keeps the producer's id on the stored event. */
export const INGEST_ID_KEY = 'ingestId';

/** UUID version 5: SHA-1 of the namespace's 16 bytes and the name, with the version and variant bits set. */
export function uuidV5(name: string, namespace: string): string {
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The event id a producer id gets in a stream (stream ids hold no newline, so the pair is unambiguous). */
export const ingestEventId = (stream: string, producerId: string): string => uuidV5(`${stream}\n${producerId}`, INGEST_NAMESPACE);

/** The events of an ingest body, with their derived ids and the producer id in the metadata. */
export function ingestEvents(body: unknown, stream: string): NewEvent[] {
  const { events } = parseWith(ingestRequestSchema, body, 'body');
  const seen = new Set<string>();
  return events.map((event, index) => {
    if (seen.has(event.id)) {
      throw new InvalidArgumentError(`events[${index}].id`, `'${event.id}' appears twice in this request`, 'ids unique within a request');
    }
    seen.add(event.id);
    const given = event.metadata?.[INGEST_ID_KEY];
    if (given !== undefined && given !== event.id) {
      throw new InvalidArgumentError(
        `events[${index}].metadata.${INGEST_ID_KEY}`,
        `got ${JSON.stringify(given).slice(0, 100)}, which is not the event's id`,
        `no ${INGEST_ID_KEY} (Logline sets it to the id)`,
      );
    }
    return { ...event, id: ingestEventId(stream, event.id), metadata: { ...event.metadata, [INGEST_ID_KEY]: event.id } };
  });
}
