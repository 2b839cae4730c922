/**
 * An open-loop HTTP load at a fixed rate, for latency at a stated request rate.
 *
 * Requests go out on a schedule (`rate` a second, evenly spaced) whatever the answers, over at
 * most `connections` keep-alive sockets, and each latency is taken from the request's scheduled
 * time: an answer that comes late, or a send that waits for a free socket, counts in full (no
 * coordinated omission). autocannon's `overallRate` is not that: each of its connections sends
 * its quota for the second as soon as the second starts, so the service sees bursts, and their
 * queueing shows in the latencies.
 */
import { Agent, request } from 'node:http';

export interface PacedRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PacedResult {
  /** Answers with a 2xx status. */
  ok: number;
  /** Other statuses, errors and time-outs. */
  failed: number;
  /** Milliseconds from each answered request's scheduled time to its answer, sorted. */
  latencies: number[];
  /** From the first scheduled send to the last answer. */
  seconds: number;
}

const TIMEOUT_MS = 10_000;

export async function pacedLoad(opts: {
  url: string;
  rate: number;
  seconds: number;
  connections: number;
  next: () => PacedRequest;
}): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const total = Math.round(opts.rate * opts.seconds);
  const interval = 1000 / opts.rate;
  const latencies: number[] = [];
  let failed = 0;
  let last = 0;
  const answers: Array<Promise<void>> = [];
  const send = (scheduled: number, { method, path, headers, body }: PacedRequest) =>
    new Promise<void>((resolve) => {
      const done = (ok: boolean) => {
        last = performance.now();
        if (ok) latencies.push(last - scheduled);
        else failed += 1;
        resolve();
      };
      const req = request(new URL(path, opts.url), { method, agent, headers, timeout: TIMEOUT_MS }, (res) => {
        res.resume();
        res.on('end', () => done((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
        res.on('error', () => done(false));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', () => done(false));
      req.end(body);
    });
  const started = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    // Timers fire at best every millisecond: each tick sends every request whose time has come.
    const tick = setInterval(() => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        answers.push(send(started + sent * interval, opts.next()));
        sent += 1;
      }
      if (sent === total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(answers);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { ok: latencies.length, failed, latencies, seconds: (last - started) / 1000 };
}
