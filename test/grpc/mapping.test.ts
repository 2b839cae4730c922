/** The KurrentDB ↔ Logline event mapping, with the protocol classes the official client ships. */
import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/core/types.js';
import { readEventMessage, uuidFromMessage, uuidMessage, wirePayload } from '../../src/server/grpc/mapping.js';
import { loadProtocol } from '../../src/server/grpc/protocol.js';

const protocol = loadProtocol();

const recorded = (over: Partial<RecordedEvent>): RecordedEvent => ({
  id: '0190f3a2-7b1c-7def-8abc-0123456789ab',
  type: 'OrderPlaced',
  data: { n: 1 },
  metadata: {},
  occurredAt: '2026-01-02T03:04:05.678Z',
  recordedAt: '2026-01-02T03:04:05.678Z',
  streamId: 'order-1',
  streamVersion: 3,
  position: 42n,
  ...over,
});

describe('KurrentDB mapping', () => {
  it('UUIDs round-trip as strings and as structured halves (signed 64-bit, big-endian)', () => {
    for (const id of [
      '0190f3a2-7b1c-7def-8abc-0123456789ab',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '00000000-0000-0000-0000-000000000001',
    ]) {
      expect(uuidFromMessage(uuidMessage(protocol, id, false))).toBe(id);
      const structured = uuidMessage(protocol, id, true);
      expect(structured.hasStructured()).toBe(true);
      expect(uuidFromMessage(structured)).toBe(id);
    }
    const allOnes = uuidMessage(protocol, 'ffffffff-ffff-ffff-ffff-ffffffffffff', true).getStructured();
    expect(allOnes?.getMostSignificantBits()).toBe('-1');
  });

  it('a read event carries revision = version − 1, both positions = global position, type, content type and created ticks', () => {
    const message = readEventMessage(protocol, recorded({}), false).getEvent();
    expect(message?.getStreamRevision()).toBe('2');
    expect(message?.getCommitPosition()).toBe('42');
    expect(message?.getPreparePosition()).toBe('42');
    const meta = message?.getMetadataMap();
    expect(meta?.get('type')).toBe('OrderPlaced');
    expect(meta?.get('content-type')).toBe('application/json');
    expect(meta?.get('created')).toBe(String(Date.parse('2026-01-02T03:04:05.678Z') * 10_000));
    expect(Buffer.from(message?.getData_asU8() ?? []).toString()).toBe('{"n":1}');
    expect(message?.getCustomMetadata_asU8()).toHaveLength(0);
  });

  it('binary data and non-object metadata come back as the bytes and content type that were sent', () => {
    const payload = wirePayload(
      recorded({
        data: Buffer.from([1, 2, 3]).toString('base64'),
        metadata: { $contentType: 'application/octet-stream', $customMetadata: Buffer.from('[1,2]').toString('base64') },
      }),
    );
    expect(payload.contentType).toBe('application/octet-stream');
    expect([...payload.data]).toEqual([1, 2, 3]);
    expect(payload.customMetadata.toString()).toBe('[1,2]');
    // Events written through Logline's own API are JSON with their metadata object as custom metadata.
    expect(wirePayload(recorded({ metadata: { correlationId: 'c' } })).customMetadata.toString()).toBe('{"correlationId":"c"}');
  });
});
