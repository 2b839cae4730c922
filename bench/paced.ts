/**
 * An open-loop HTTP load at a fixed rate, for latency at a stated request rate.
 *
 * Requests go out on a schedule (`rate` a second, evenly spaced) whatever the answers, over at
 * most `connections` keep-alive sockets, and each latency is taken from the request's scheduled
 * time: an answer that comes late, or a send that waits for a free socket, counts in full (no
 * coordinated omission). autocannon's `overallRate` is not that: each of its connections sends
 * its quota for the second as soon as the second starts, so the service sees bursts, and their
 * queueing shows in the latencies.
 *
 * The client writes HTTP/1.1 on plain sockets and reads only the status line and the body's
 * length: on a two-core machine that shares the client with the service and the database, Node's
 * `http.request` took half a core at 5,000 requests/s, and what the client spends the service does
 * not get (docs/benchmarks.md, 2026-12-03).
 */
import { connect, type Socket } from 'node:net';

export interface PacedRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PacedResult {
  /** Answers with a 2xx status, after the warm-up. */
  ok: number;
  /** Other statuses, errors and time-outs, the warm-up's included. */
  failed: number;
  /** Milliseconds from each answered request's scheduled time to its answer, sorted (after the warm-up). */
  latencies: number[];
  /** From the first scheduled send after the warm-up to the last answer. */
  seconds: number;
}

const TIMEOUT_MS = 10_000;
const HEADER_END = Buffer.from('\r\n\r\n');

/** One request on the wire and when it was due. */
interface Due {
  bytes: Buffer;
  scheduled: number;
}

/** A keep-alive connection that carries one request at a time. */
interface Connection {
  socket: Socket;
  /** The request it carries and when it was written; undefined while idle. */
  current: (Due & { sentAt: number }) | undefined;
  received: Buffer;
  connected: boolean;
}

/**
 * Where the response at the start of `data` ends, and its status; undefined until all of it
 * arrived. Bodies are framed by Content-Length or chunked encoding (the services under test send
 * one of the two); 204 and 304 have none.
 */
export function responseEnd(data: Buffer): { status: number; end: number } | undefined {
  const headerEnd = data.indexOf(HEADER_END);
  if (headerEnd < 0) return undefined;
  const head = data.toString('latin1', 0, headerEnd);
  const status = Number(head.slice(9, 12));
  const bodyStart = headerEnd + HEADER_END.length;
  if (status === 204 || status === 304) return { status, end: bodyStart };
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) {
    const end = bodyStart + Number(length[1]);
    return data.length >= end ? { status, end } : undefined;
  }
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) throw new Error(`response without a body length: ${head.split('\r\n')[0]}`);
  let at = bodyStart;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at, 'latin1');
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(data.toString('latin1', at, lineEnd), 16);
    const next = lineEnd + 2 + size + 2;
    if (data.length < next) return undefined;
    if (size === 0) return { status, end: next };
    at = next;
  }
}

export async function pacedLoad(opts: {
  url: string;
  rate: number;
  seconds: number;
  connections: number;
  next: () => PacedRequest;
  /**
   * Seconds at the start sent on the schedule whose answers are not timed (default 0): a service's
   * first seconds under load (its code compiled, statements prepared, pages read) are not its
   * steady latency. Their failures count. `seconds` includes them.
   */
  warmupSeconds?: number;
}): Promise<PacedResult> {
  const { hostname, port, host } = new URL(opts.url);
  const encode = ({ method, path, headers = {}, body = '' }: PacedRequest): Buffer => {
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    if (body || method !== 'GET') lines.push(`content-length: ${Buffer.byteLength(body)}`);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
  };
  const total = Math.round(opts.rate * opts.seconds);
  const interval = 1000 / opts.rate;
  const latencies: number[] = [];
  let failed = 0;
  let settled = 0;
  let last = 0;
  const waiting: Due[] = [];
  const idle: Connection[] = [];
  const open = new Set<Connection>();
  let allSettled: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    allSettled = resolve;
  });

  const started = performance.now();
  const measuredFrom = started + (opts.warmupSeconds ?? 0) * 1000;
  const settle = (ok: boolean, scheduled: number) => {
    last = performance.now();
    if (!ok) failed += 1;
    else if (scheduled >= measuredFrom) latencies.push(last - scheduled);
    if (++settled === total) allSettled();
  };
  const send = (conn: Connection, due: Due) => {
    conn.current = { ...due, sentAt: performance.now() };
    conn.socket.write(due.bytes);
  };
  /** The connection is free: the next waiting request, or the idle list. */
  const free = (conn: Connection) => {
    conn.current = undefined;
    const due = waiting.shift();
    if (due) send(conn, due);
    else idle.push(conn);
  };
  const drop = (conn: Connection) => {
    if (!open.delete(conn)) return;
    const i = idle.indexOf(conn);
    if (i >= 0) idle.splice(i, 1);
    conn.socket.destroy();
    if (conn.current) settle(false, conn.current.scheduled);
    conn.current = undefined;
    // A request waiting for a socket gets a new one; none can be had when connecting failed.
    if (!conn.connected) for (const due of waiting.splice(0)) settle(false, due.scheduled);
    else if (waiting.length) openConnection();
  };
  const openConnection = () => {
    const socket = connect({ host: hostname, port: Number(port), noDelay: true });
    const conn: Connection = { socket, current: undefined, received: Buffer.alloc(0), connected: false };
    open.add(conn);
    socket.once('connect', () => {
      conn.connected = true;
      free(conn);
    });
    socket.on('data', (chunk: Buffer) => {
      conn.received = conn.received.length ? Buffer.concat([conn.received, chunk]) : chunk;
      let response: ReturnType<typeof responseEnd>;
      try {
        response = responseEnd(conn.received);
      } catch {
        return drop(conn);
      }
      if (!response || !conn.current) return;
      // One request at a time per connection: nothing may follow its response.
      if (conn.received.length !== response.end) return drop(conn);
      conn.received = Buffer.alloc(0);
      settle(response.status >= 200 && response.status < 300, conn.current.scheduled);
      free(conn);
    });
    socket.on('error', () => drop(conn));
    socket.on('close', () => drop(conn));
  };
  const dispatch = (due: Due) => {
    const conn = idle.pop();
    if (conn) return send(conn, due);
    waiting.push(due);
    if (open.size < opts.connections) openConnection();
  };
  // An answer later than TIMEOUT_MS fails its request, and the connection is dropped with it; so
  // does a wait for a socket that long.
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const conn of open) if (conn.current && now - conn.current.sentAt > TIMEOUT_MS) drop(conn);
    while (waiting.length && now - (waiting[0] as Due).scheduled > TIMEOUT_MS) settle(false, (waiting.shift() as Due).scheduled);
  }, 250);

  let sent = 0;
  await new Promise<void>((resolve) => {
    // Timers fire at best every millisecond: each tick sends every request whose time has come.
    const tick = setInterval(() => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        dispatch({ bytes: encode(opts.next()), scheduled: started + sent * interval });
        sent += 1;
      }
      if (sent === total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  if (total > 0) await finished;
  clearInterval(watchdog);
  for (const conn of open) conn.socket.destroy();
  latencies.sort((a, b) => a - b);
  return { ok: latencies.length, failed, latencies, seconds: (last - Math.min(measuredFrom, last)) / 1000 };
}
