/**
 * Server-sent events over store.subscribe(): catch-up, then live. Each event's `id` is its
 * position, so a reconnecting EventSource resumes with Last-Event-ID.
 *
 * Memory per client is bounded: the response body is a ReadableStream whose queue holds at
 * most `bufferBytes`. The pump reads the next event only when there is room (a healthy but
 * slower client just paces the catch-up). A client that lets the buffer stay full for
 * `stallMs` gets a final `event: overflow` message and the stream closes; if it still does not
 * read, its socket is destroyed DESTROY_AFTER_MS later.
 */
import { isLoglineError } from '../core/errors.js';
import { traceHandling } from '../core/tracing.js';
import type { EventStore, RecordedEvent } from '../core/types.js';
import { stringify, toWire } from './json.js';

export interface SseSettings {
  /** Bytes queued per client before it counts as stalled. */
  bufferBytes: number;
  /** How long a full buffer may stay full before the server gives up on the client. */
  stallMs: number;
  /** Interval of `: heartbeat` comments that keep proxies and idle clients from timing out. */
  heartbeatMs: number;
}

export const DEFAULT_SSE: SseSettings = { bufferBytes: 1024 * 1024, stallMs: 10_000, heartbeatMs: 15_000 };

export interface SseClientInfo {
  id: number;
  /** '$all' or the stream id. */
  target: string;
  filtered: boolean;
  /** Position of the last event sent ('0' before the first). */
  lastEventId: bigint;
  connectedAt: string;
  bufferedBytes: () => number;
}

/** The live SSE clients, for /metrics, /v1/subscriptions and shutdown. */
export class SseHub {
  private nextId = 1;
  readonly clients = new Map<number, SseClientInfo & { stop: (reason: string) => void }>();

  register(client: Omit<SseClientInfo, 'id'> & { stop: (reason: string) => void }) {
    const entry = { ...client, id: this.nextId++ };
    this.clients.set(entry.id, entry);
    return entry;
  }

  /** Ends every stream (server shutdown): clients get a final comment and reconnect elsewhere. */
  closeAll(reason: string): void {
    for (const client of this.clients.values()) client.stop(reason);
  }
}

export interface SseRequest {
  store: EventStore;
  hub: SseHub;
  settings: SseSettings;
  /** Exclusive start position. */
  from: bigint;
  types?: string[];
  streamPrefix?: string;
  category?: string;
  /** Only this exact stream (the per-stream endpoint subscribes by prefix and filters). */
  stream?: string;
  /** Destroys the underlying connection: the last resort for a client that never reads. */
  destroy?: () => void;
  onError?: (error: unknown) => void;
  /** Called when the server gives up on a stalled client. */
  onOverflow?: (client: { id: number; target: string; lastEventId: bigint }) => void;
}

const encoder = new TextEncoder();
/** Time a client that was told to go away has to read the goodbye before its socket is destroyed. */
const DESTROY_AFTER_MS = 30_000;

export function sseBody(request: SseRequest): ReadableStream<Uint8Array> {
  const { store, hub, settings, stream } = request;
  const abort = new AbortController();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let wakeWriter: (() => void) | undefined;

  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        wakeWriter?.();
      },
      cancel() {
        // The client went away.
        finish();
      },
    },
    { highWaterMark: settings.bufferBytes, size: (chunk) => chunk.byteLength },
  );

  const send = (text: string) => {
    if (!closed) controller.enqueue(encoder.encode(text));
  };
  const room = () => (controller.desiredSize ?? 0) > 0;

  /** Resolves true once the queue has room again, false if it stays full for stallMs (or the stream ends). */
  const waitForRoom = () =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), settings.stallMs);
      const onAbort = () => settle(false);
      abort.signal.addEventListener('abort', onAbort, { once: true });
      function settle(ok: boolean) {
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', onAbort);
        wakeWriter = undefined;
        resolve(ok);
      }
      wakeWriter = () => {
        if (room()) settle(true);
      };
    });

  const client = hub.register({
    target: stream ?? '$all',
    filtered: Boolean(stream || request.types?.length || request.streamPrefix || request.category),
    lastEventId: request.from,
    connectedAt: new Date().toISOString(),
    bufferedBytes: () => Math.max(0, settings.bufferBytes - (controller.desiredSize ?? 0)),
    stop: (reason) => {
      send(`: ${reason}\n\n`);
      finish();
    },
  });

  const heartbeat = setInterval(() => {
    if (room()) send(': heartbeat\n\n');
  }, settings.heartbeatMs);
  heartbeat.unref();

  function finish() {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    hub.clients.delete(client.id);
    abort.abort();
    try {
      controller.close();
    } catch {
      // already closed or cancelled
    }
  }

  const giveUp = () => {
    send(
      `event: overflow\ndata: ${JSON.stringify({
        message: `This client fell more than ${settings.bufferBytes} bytes behind for ${settings.stallMs} ms; reconnect with Last-Event-ID to resume.`,
        lastEventId: client.lastEventId.toString(),
      })}\n\n`,
    );
    finish();
    request.onOverflow?.({ id: client.id, target: client.target, lastEventId: client.lastEventId });
    // The goodbye still sits in a full buffer; a client that never reads is cut off.
    if (request.destroy) setTimeout(request.destroy, DESTROY_AFTER_MS).unref();
  };

  const pump = async () => {
    send(`retry: 1000\n: connected, after position ${request.from}\n\n`);
    const events = store.subscribe({
      from: request.from,
      types: request.types,
      streamPrefix: stream ?? request.streamPrefix,
      category: request.category,
      signal: abort.signal,
    });
    for await (const event of events as AsyncIterable<RecordedEvent>) {
      if (closed) return;
      if (stream !== undefined && event.streamId !== stream) continue;
      // A span per delivery (only when tracing records) continues the trace of the event's append.
      traceHandling('logline.sse.deliver', { 'logline.consumer': `sse#${client.id}` }, [event], () =>
        send(`id: ${event.position}\ndata: ${stringify(toWire(event))}\n\n`),
      );
      client.lastEventId = event.position;
      if (!room() && !(await waitForRoom())) {
        if (!closed) giveUp();
        return;
      }
    }
  };
  pump()
    .catch((error: unknown) => {
      if (closed) return;
      request.onError?.(error);
      // A typed failure (PositionBeyondHead after a restore) keeps its code and details.
      const body = isLoglineError(error)
        ? error.toJSON()
        : { error: 'SubscriptionFailed', message: String((error as Error)?.message ?? error) };
      send(`event: error\ndata: ${stringify(body)}\n\n`);
    })
    .finally(finish);

  return body;
}
