/**
 * The official KurrentDB Node.js client, unmodified, against a real `logline serve --grpc-port`
 * process: appends (every expected-revision form), reads (stream and $all, both directions),
 * subscriptions (catch-up, caught-up, live, filters, checkpoints), ServerFeatures, Gossip, and a
 * restart. The same suite runs on SQLite and PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  binaryEvent,
  END,
  type EventData,
  eventTypeFilter,
  jsonEvent,
  type KurrentDBClient,
  NO_STREAM,
  type Position,
  START,
  STREAM_EXISTS,
  streamNameFilter,
} from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, post } from '../server/process.js';
import {
  all,
  appendUntilDeadline,
  eventsOf,
  eventually,
  type GrpcServer,
  plaintextClient,
  rejection,
  startGrpcServer,
  supportedMethods,
} from './kurrent.js';

export interface Backend {
  /** A fresh, empty store URL and how to remove it. */
  open(): Promise<{ store: string; cleanup(): Promise<void> | void }>;
}

const placed = (n: number) => jsonEvent({ type: 'OrderPlaced', data: { n }, metadata: { correlationId: `c-${n}` } });

export function describeKurrentClient(name: string, backend: Backend) {
  describe(`KurrentDB client over gRPC on ${name}`, () => {
    let store: { store: string; cleanup(): Promise<void> | void };
    let running: GrpcServer;
    let client: KurrentDBClient;
    // Every test writes its own streams: `<prefix>-…`.
    const prefix = () => `t${randomUUID().slice(0, 8)}`;

    beforeAll(async () => {
      store = await backend.open();
      running = await startGrpcServer(['--store', store.store]);
      client = plaintextClient(running.port);
    });
    afterAll(async () => {
      await client?.dispose();
      await running?.server.stop();
      await store?.cleanup();
    });

    it('appends with every expected-revision form; a wrong one answers the current revision and stores nothing', async () => {
      const stream = `${prefix()}-order`;
      const first = await client.appendToStream(stream, [placed(1), placed(2)], { streamState: NO_STREAM });
      expect(first.success).toBe(true);
      expect(first.nextExpectedRevision).toBe(1n);
      expect(first.position?.commit).toBe(first.position?.prepare);

      expect((await client.appendToStream(stream, placed(3), { streamState: 2n - 1n })).nextExpectedRevision).toBe(2n);
      expect((await client.appendToStream(stream, placed(4), { streamState: STREAM_EXISTS })).nextExpectedRevision).toBe(3n);
      expect((await client.appendToStream(stream, placed(5), { streamState: ANY })).nextExpectedRevision).toBe(4n);
      expect((await client.appendToStream(stream, placed(6))).nextExpectedRevision).toBe(5n);

      const exact = await rejection(client.appendToStream(stream, placed(99), { streamState: 3n }));
      expect(exact.constructor.name).toBe('WrongExpectedVersionError');
      expect(exact).toMatchObject({ streamName: stream, expectedState: 3n, actualState: 5n });
      const noStream = await rejection(client.appendToStream(stream, placed(99), { streamState: NO_STREAM }));
      expect(noStream).toMatchObject({ expectedState: NO_STREAM, actualState: 5n });
      const missing = `${prefix()}-missing`;
      const exists = await rejection(client.appendToStream(missing, placed(99), { streamState: STREAM_EXISTS }));
      expect(exists).toMatchObject({ streamName: missing, expectedState: STREAM_EXISTS, actualState: NO_STREAM });
      const onMissing = await rejection(client.appendToStream(missing, placed(99), { streamState: 0n }));
      expect(onMissing).toMatchObject({ expectedState: 0n, actualState: NO_STREAM });

      const stored = eventsOf(await all(client.readStream(stream)));
      expect(stored.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6]);
      await expect(all(client.readStream(missing))).rejects.toMatchObject({ type: 'stream-not-found' });
    });

    it('events appended over HTTP read back over gRPC, and the other way round: one store', async () => {
      const stream = `${prefix()}-both`;
      const http = await post(`${running.server.url}/v1/streams/${stream}`, {
        events: [{ type: 'ViaHttp', data: { n: 1 }, metadata: { m: 1 } }],
      });
      expect(http.status).toBe(201);
      await client.appendToStream(stream, jsonEvent({ type: 'ViaGrpc', data: { n: 2 } }), { streamState: 0n });
      expect(eventsOf(await all(client.readStream(stream))).map((e) => [e.type, e.data, e.metadata])).toEqual([
        ['ViaHttp', { n: 1 }, { m: 1 }],
        ['ViaGrpc', { n: 2 }, undefined],
      ]);
      const viaHttp = await get(`${running.server.url}/v1/streams/${stream}`);
      expect((viaHttp.body.events as { type: string; streamVersion: number }[]).map((e) => [e.type, e.streamVersion])).toEqual([
        ['ViaHttp', 1],
        ['ViaGrpc', 2],
      ]);
    });

    it('re-sending the same event ids is an idempotent retry', async () => {
      const stream = `${prefix()}-retry`;
      const events = [placed(1), placed(2)];
      const once = await client.appendToStream(stream, events, { streamState: NO_STREAM });
      const again = await client.appendToStream(stream, events, { streamState: NO_STREAM });
      expect(again.nextExpectedRevision).toBe(once.nextExpectedRevision);
      expect(eventsOf(await all(client.readStream(stream)))).toHaveLength(2);
    });

    it('reads a stream forwards and backwards, from a revision, with a max count; data, metadata, ids and dates round-trip', async () => {
      const stream = `${prefix()}-read`;
      const before = Date.now();
      const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
      const sent: EventData[] = [
        ...[1, 2, 3, 4, 5].map(placed),
        binaryEvent({ type: 'Blob', data: bytes, metadata: Uint8Array.from([9, 8, 7]) }),
      ];
      await client.appendToStream(stream, sent);

      const forward = eventsOf(await all(client.readStream(stream)));
      expect(forward.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
      expect(forward.map((e) => e.id)).toEqual(sent.map((e) => e.id));
      expect(forward[0]).toMatchObject({
        streamId: stream,
        type: 'OrderPlaced',
        isJson: true,
        data: { n: 1 },
        metadata: { correlationId: 'c-1' },
      });
      expect(forward[0]?.created.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(forward[0]?.created.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
      const blob = forward[5];
      expect(blob?.isJson).toBe(false);
      expect(Buffer.from(blob?.data as Uint8Array)).toEqual(Buffer.from(bytes));
      expect(Buffer.from(blob?.metadata as Uint8Array)).toEqual(Buffer.from([9, 8, 7]));
      const positions = forward.map((e) => e.position?.commit ?? 0n);
      expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions);

      const fromTwo = eventsOf(await all(client.readStream(stream, { fromRevision: 2n, maxCount: 2 })));
      expect(fromTwo.map((e) => e.revision)).toEqual([2n, 3n]);
      const backward = eventsOf(await all(client.readStream(stream, { direction: BACKWARDS, fromRevision: END, maxCount: 3 })));
      expect(backward.map((e) => e.revision)).toEqual([5n, 4n, 3n]);
      const backFromTwo = eventsOf(await all(client.readStream(stream, { direction: BACKWARDS, fromRevision: 2n })));
      expect(backFromTwo.map((e) => e.revision)).toEqual([2n, 1n, 0n]);
      expect(eventsOf(await all(client.readStream(stream, { fromRevision: 50n })))).toEqual([]);
    });

    it('reads $all forwards and backwards from a position with a max count, positions matching the stream reads', async () => {
      const p = prefix();
      await client.appendToStream(`${p}-a`, [placed(1), placed(2)]);
      await client.appendToStream(`${p}-b`, [placed(3)]);
      await client.appendToStream(`${p}-a`, [placed(4)]);
      const mine = (events: ReturnType<typeof eventsOf>) => events.filter((e) => e.streamId.startsWith(p));

      const forward = mine(eventsOf(await all(client.readAll({ fromPosition: START }))));
      expect(forward.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4]);
      const positions = forward.map((e) => e.position as Position);
      const streamA = eventsOf(await all(client.readStream(`${p}-a`)));
      expect(streamA.map((e) => e.position)).toEqual([positions[0], positions[1], positions[3]]);

      // A read from a position includes the event at that position.
      const fromSecond = eventsOf(await all(client.readAll({ fromPosition: positions[1] as Position, maxCount: 2 })));
      expect(fromSecond.map((e) => (e.data as { n: number }).n)).toEqual([2, 3]);

      const backward = eventsOf(await all(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 4 })));
      expect(backward.map((e) => (e.data as { n: number }).n)).toEqual([4, 3, 2, 1]);
      const backFromThird = eventsOf(
        await all(client.readAll({ direction: BACKWARDS, fromPosition: positions[2] as Position, maxCount: 2 })),
      );
      expect(backFromThird.map((e) => (e.data as { n: number }).n)).toEqual([3, 2]);
    });

    it('subscribes to a stream: confirmation, catch-up, caught-up, then live, without loss or repeat', async () => {
      const stream = `${prefix()}-sub`;
      await client.appendToStream(stream, [placed(1), placed(2), placed(3)]);
      await client.appendToStream(`${stream}-other`, [placed(100)]);
      const fromStart = client.subscribeToStream(stream, { fromRevision: START });
      const afterFirst = client.subscribeToStream(stream, { fromRevision: 0n });
      const received: number[] = [];
      const receivedAfterFirst: bigint[] = [];
      let caughtUpAt = -1;
      fromStart.on('caughtUp', () => {
        caughtUpAt = received.length;
      });
      fromStart.on('data', (resolved) => received.push((resolved.event?.data as { n: number } | undefined)?.n ?? -1));
      afterFirst.on('data', (resolved) => receivedAfterFirst.push(resolved.event?.revision ?? -1n));
      await eventually(() => caughtUpAt === 3);
      await client.appendToStream(stream, [placed(4), placed(5)]);
      await client.appendToStream(`${stream}-other`, [placed(101)]);
      await eventually(() => received.length >= 5 && receivedAfterFirst.length >= 4);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(received).toEqual([1, 2, 3, 4, 5]);
      // Starting after revision 0 is exclusive, as KurrentDB's subscriptions are.
      expect(receivedAfterFirst).toEqual([1n, 2n, 3n, 4n]);
      expect(fromStart.id).toBeTruthy();
      await fromStart.unsubscribe();
      await afterFirst.unsubscribe();
    });

    it('subscribes to $all with stream-prefix, regex and event-type filters, with checkpoints, from a position or the end', async () => {
      const p = prefix();
      await client.appendToStream(`${p}-x-1`, [placed(1)]);
      await client.appendToStream(`${p}-y-1`, [jsonEvent({ type: 'Shipped', data: { n: 2 } })]);
      const checkpoints: bigint[] = [];
      const byPrefix = client.subscribeToAll({
        fromPosition: START,
        filter: streamNameFilter({
          prefixes: [`${p}-x-`],
          checkpointReached: async (_sub, position) => void checkpoints.push(position.commit),
        }),
      });
      const byRegex = client.subscribeToAll({ fromPosition: START, filter: streamNameFilter({ regex: `^${p}-(x|y)-` }) });
      const byType = client.subscribeToAll({ fromPosition: START, filter: eventTypeFilter({ prefixes: ['Ship'] }) });
      const fromEnd = client.subscribeToAll({ fromPosition: END, filter: streamNameFilter({ prefixes: [p] }) });
      const seen = { prefix: [] as string[], regex: [] as string[], type: [] as string[], end: [] as string[] };
      const collect = (into: string[]) => (resolved: { event?: { streamId: string } }) => {
        if (resolved.event?.streamId.startsWith(p)) into.push(resolved.event.streamId);
      };
      byPrefix.on('data', collect(seen.prefix));
      byRegex.on('data', collect(seen.regex));
      byType.on('data', collect(seen.type));
      fromEnd.on('data', collect(seen.end));
      let endReady = false;
      fromEnd.on('caughtUp', () => {
        endReady = true;
      });
      await eventually(() => seen.prefix.length === 1 && seen.regex.length === 2 && seen.type.length === 1 && endReady);
      await client.appendToStream(`${p}-x-2`, [placed(3)]);
      await client.appendToStream(`${p}-y-2`, [jsonEvent({ type: 'Shipped', data: { n: 4 } })]);
      await client.appendToStream(`${p}-z-1`, [placed(5)]);
      await eventually(() => seen.prefix.length === 2 && seen.regex.length === 4 && seen.type.length === 2 && seen.end.length === 3);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen.prefix).toEqual([`${p}-x-1`, `${p}-x-2`]);
      expect(seen.regex).toEqual([`${p}-x-1`, `${p}-y-1`, `${p}-x-2`, `${p}-y-2`]);
      expect(seen.type).toEqual([`${p}-y-1`, `${p}-y-2`]);
      expect(seen.end).toEqual([`${p}-x-2`, `${p}-y-2`, `${p}-z-1`]);
      // A filtered $all subscription reports how far it has searched, at least once it has caught up.
      expect(checkpoints.length).toBeGreaterThan(0);
      for (const subscription of [byPrefix, byRegex, byType, fromEnd]) await subscription.unsubscribe();
    });

    it('a subscription started while appends are going on crosses from catch-up to live without loss or repeat', async () => {
      const p = prefix();
      const writer = (async () => {
        for (let batch = 0; batch < 10; batch++) {
          await client.appendToStream(
            `${p}-${batch % 3}`,
            Array.from({ length: 30 }, (_, k) => placed(batch * 30 + k)),
          );
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const subscription = client.subscribeToAll({ fromPosition: START, filter: streamNameFilter({ prefixes: [`${p}-`] }) });
      const seen: number[] = [];
      subscription.on('data', (resolved) => seen.push((resolved.event?.data as { n: number } | undefined)?.n ?? -1));
      await writer;
      await eventually(() => seen.length >= 300);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen).toEqual(Array.from({ length: 300 }, (_, n) => n));
      await subscription.unsubscribe();
    });

    it('answers ServerFeatures with a numeric version and only the implemented calls; Gossip names this node leader', async () => {
      const { version, methods } = await supportedMethods(running.port);
      expect(version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(methods.sort()).toEqual([
        'event_store.client.gossip.Gossip/Read',
        'event_store.client.server_features.ServerFeatures/GetSupportedMethods',
        'event_store.client.streams.Streams/Append',
        'event_store.client.streams.Streams/Delete',
        'event_store.client.streams.Streams/Read',
        'event_store.client.streams.Streams/Tombstone',
      ]);

      // A discovery connection string goes through Gossip (both transports) before anything else.
      const discovering = plaintextClient(running.port, 'kurrentdb+discover');
      try {
        const stream = `${prefix()}-gossip`;
        await discovering.appendToStream(stream, placed(1));
        expect(eventsOf(await all(discovering.readStream(stream)))).toHaveLength(1);
      } finally {
        await discovering.dispose();
      }
    });

    it('deleteStream (soft) and tombstoneStream (hard) with expected revisions, as the client expects them', async () => {
      const soft = `${prefix()}-soft`;
      await client.appendToStream(soft, [placed(1), placed(2)]);
      const stale = await rejection(client.deleteStream(soft, { expectedRevision: 0n }));
      expect(stale).toMatchObject({ type: 'wrong-expected-version', streamName: soft, expectedState: 0n, actualState: 1n });
      expect(await client.deleteStream(soft, { expectedRevision: 1n })).toEqual({});
      // A soft-deleted stream reads as not found; appending continues its revisions.
      expect(await rejection(all(client.readStream(soft)))).toMatchObject({ type: 'stream-not-found' });
      expect((await client.appendToStream(soft, placed(3), { streamState: 1n })).nextExpectedRevision).toBe(2n);
      expect(eventsOf(await all(client.readStream(soft))).map((e) => e.revision)).toEqual([2n]);

      const hard = `${prefix()}-hard`;
      await client.appendToStream(hard, placed(1));
      expect(await client.tombstoneStream(hard, { expectedRevision: 0n })).toEqual({});
      for (const expectedRevision of [ANY, NO_STREAM, 0n] as const) {
        const late = await rejection(client.appendToStream(hard, placed(2), { streamState: expectedRevision }));
        expect(late).toMatchObject({ type: 'stream-deleted', streamName: hard });
      }
      expect(await rejection(all(client.readStream(hard)))).toMatchObject({ type: 'stream-deleted', streamName: hard });
      expect(await rejection(client.deleteStream(hard))).toMatchObject({ type: 'stream-deleted' });
      // Over HTTP the same store says the same.
      expect((await get(`${running.server.url}/v1/streams/${hard}/metadata`)).body).toMatchObject({ deleted: 'hard' });
    });

    it('stream metadata through $$stream: maxCount, maxAge and truncateBefore are the stream settings, both ways', async () => {
      const s = `${prefix()}-meta`;
      await client.appendToStream(s, [placed(1), placed(2), placed(3), placed(4), placed(5)]);
      expect(await client.getStreamMetadata(s)).toEqual({ streamName: s });
      await client.setStreamMetadata(s, { maxCount: 3, truncateBefore: 1 });
      // Revisions 2, 3, 4 are the last three; $tb 1 alone would hide revision 0 only.
      expect(eventsOf(await all(client.readStream(s))).map((e) => e.revision)).toEqual([2n, 3n, 4n]);
      expect((await client.getStreamMetadata(s)).metadata).toEqual({ maxCount: 3, truncateBefore: 1 });
      // The same settings over HTTP, in Logline's terms (truncateBefore is a version there).
      expect((await get(`${running.server.url}/v1/streams/${s}/metadata`)).body).toMatchObject({ maxCount: 3, truncateBefore: 2 });
      await client.setStreamMetadata(s, { truncateBefore: 4, maxAge: 3600 });
      expect(eventsOf(await all(client.readStream(s))).map((e) => e.revision)).toEqual([4n]);
      expect((await client.getStreamMetadata(s)).metadata).toEqual({ truncateBefore: 4, maxAge: 3600 });
      // A bad value is refused and changes nothing.
      expect(await rejection(client.setStreamMetadata(s, { maxCount: 0 }))).toBeDefined();
      expect((await client.getStreamMetadata(s)).metadata).toEqual({ truncateBefore: 4, maxAge: 3600 });
    });

    it('refuses bad input with a clear error and stores nothing', async () => {
      const p = prefix();
      const badStream = await rejection(client.appendToStream(`${p} with spaces`, placed(1)));
      expect(badStream.message).toMatch(/Invalid stream id/);
      const badType = await rejection(client.appendToStream(`${p}-bad`, jsonEvent({ type: 'has spaces', data: {} })));
      expect(badType.message).toMatch(/type/);
      // 19 binary events of 0.9 MB (cheap to send): each within the event limit, together over the 16 MiB append limit.
      const big = new Uint8Array(900_000);
      const tooLarge = await rejection(
        client.appendToStream(
          `${p}-bad`,
          Array.from({ length: 19 }, () => binaryEvent({ type: 'Big', data: big })),
          { deadline: 60_000 },
        ),
      );
      expect(tooLarge).toMatchObject({ type: 'maximum-append-size-exceeded', maxAppendSize: 16 * 1024 * 1024 });
      await expect(all(client.readStream(`${p}-bad`))).rejects.toMatchObject({ type: 'stream-not-found' });
    });

    it('a client that gives up on a large append mid-flight stores none of it, and the server stays up', async () => {
      const stream = `${prefix()}-cancelled`;
      const events = Array.from({ length: 2000 }, (_, n) => placed(n));
      await expect(client.appendToStream(stream, events, { deadline: 1 })).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await expect(all(client.readStream(stream))).rejects.toMatchObject({ type: 'stream-not-found' });
      expect((await client.appendToStream(stream, placed(1))).success).toBe(true);
    });

    it('appends whose client reached its deadline before finishing store none of their events', async () => {
      // The client half-closes when it gives up (see docs/kurrentdb.md); the server used to read that
      // before its own deadline now and then (about 1 call in 20 here), so try many. A deadline under
      // the server's 10 ms margin makes the outcome independent of how loaded the machine is.
      const streams = Array.from({ length: 40 }, () => `${prefix()}-deadline`);
      for (const stream of streams) expect(await appendUntilDeadline(running.port, stream, { count: 3, deadlineMs: 5 })).toBe(4); // DEADLINE_EXCEEDED
      for (const stream of streams) await expect(all(client.readStream(stream))).rejects.toMatchObject({ type: 'stream-not-found' });
    });

    it('after a server restart the same client reconnects and a resubscription resumes without loss or repeat', async () => {
      const stream = `${prefix()}-restart`;
      await client.appendToStream(stream, [placed(1), placed(2)]);
      const before = client.subscribeToStream(stream, { fromRevision: START });
      const revisions: bigint[] = [];
      const ended = new Promise<unknown>((resolve) => {
        before.on('error', resolve);
        before.on('end', resolve);
        before.on('close', resolve);
      });
      before.on('data', (resolved) => revisions.push(resolved.event?.revision ?? -1n));
      await eventually(() => revisions.length === 2);

      const { port } = running;
      const stopping = Date.now();
      await running.server.stop();
      // Clients keep their connections open: shutdown must not wait out its grace period for them.
      expect(Date.now() - stopping).toBeLessThan(5000);
      await ended;
      running = await startGrpcServer(['--store', store.store], port);
      // The first calls may meet the reconnecting channel; an application retries them.
      let appended = false;
      for (let attempt = 0; attempt < 50 && !appended; attempt++) {
        try {
          await client.appendToStream(stream, [placed(3)], { streamState: 1n });
          appended = true;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      expect(appended).toBe(true);
      const resumed = client.subscribeToStream(stream, { fromRevision: revisions.at(-1) as bigint });
      resumed.on('data', (resolved) => revisions.push(resolved.event?.revision ?? -1n));
      await eventually(() => revisions.length >= 3);
      await client.appendToStream(stream, [placed(4)], { streamState: 2n });
      await eventually(() => revisions.length >= 4);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(revisions).toEqual([0n, 1n, 2n, 3n]);
      expect(eventsOf(await all(client.readStream(stream))).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
      await resumed.unsubscribe();
    });
  });
}
