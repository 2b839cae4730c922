/**
 * The last 15 minutes of the server's own counters, for the admin page's charts: appends/s and
 * reads/s (HTTP requests answered), SSE clients, and each consumer's lag in positions. Sampled on
 * a timer (every 5 s, LOGLINE_HISTORY_INTERVAL_MS to change it) into a fixed-size ring: memory
 * stays flat however long the server runs.
 */
import type { Hono } from 'hono';
import type { EventStore } from '../core/types.js';
import { listConsumers } from '../projections/observability.js';
import type { ServerEnv } from './app.js';
import { requireRight } from './auth.js';
import { stringify } from './json.js';
import { noQuery, queryOf } from './schemas.js';

export interface HistorySample {
  at: string;
  appendsPerSec: number;
  readsPerSec: number;
  sseClients: number;
  /** Lag in positions per consumer checkpoint name. */
  lag: Record<string, number>;
}

const WINDOW_MS = 15 * 60 * 1000;
/** Consumers charted per sample at most: a store with thousands of checkpoints keeps samples small. */
const MAX_CONSUMERS = 50;

function intervalFromEnv(): number {
  const value = Number(process.env.LOGLINE_HISTORY_INTERVAL_MS);
  return Number.isSafeInteger(value) && value >= 50 ? value : 5000;
}

const isRead = (method: string, path: string) =>
  method === 'GET' && (path === '/v1/all' || (/^\/v1\/streams\/[^/]+$/.test(path) && !path.endsWith('/subscribe')));
const isAppend = (method: string, path: string) => method === 'POST' && /^\/v1\/streams\/[^/]+$/.test(path);

export function mountHistory(app: Hono<ServerEnv>, store: EventStore, sseClients: () => number): void {
  const intervalMs = intervalFromEnv();
  const capacity = Math.ceil(WINDOW_MS / intervalMs);
  const samples: HistorySample[] = [];
  let appends = 0;
  let reads = 0;
  let last = Date.now();
  let watched = false;

  app.use(async (c, next) => {
    await next();
    if (c.res.status >= 400) return;
    if (isAppend(c.req.method, c.req.path)) appends++;
    else if (isRead(c.req.method, c.req.path)) reads++;
  });

  const sample = async () => {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - last) / 1000);
    let lag: Record<string, number> = {};
    // Consumer lag reads the store's checkpoint tables: only once someone looks at the history
    // (the admin page), so a server nobody watches never touches them on its own.
    if (watched)
      try {
        const consumers = await listConsumers(store);
        lag = Object.fromEntries(
          consumers
            .sort((a, b) => b.lagPositions - a.lagPositions)
            .slice(0, MAX_CONSUMERS)
            .map((info) => [info.name, info.lagPositions]),
        );
      } catch (error) {
        // The store closed with the server: sampling ends with it.
        if ((error as { code?: string }).code === 'StoreClosed') return clearInterval(timer);
      }
    samples.push({
      at: new Date(now).toISOString(),
      appendsPerSec: +(appends / seconds).toFixed(2),
      readsPerSec: +(reads / seconds).toFixed(2),
      sseClients: sseClients(),
      lag,
    });
    if (samples.length > capacity) samples.splice(0, samples.length - capacity);
    appends = 0;
    reads = 0;
    last = now;
  };
  let sampling = false;
  const timer = setInterval(() => {
    if (sampling) return; // a slow consumer listing skips a tick rather than piling up
    sampling = true;
    void sample().finally(() => {
      sampling = false;
    });
  }, intervalMs).unref();

  app.get('/v1/history', (c) => {
    queryOf(c, noQuery);
    requireRight(c.get('key'), 'read', '', 'server history');
    watched = true;
    return new Response(stringify({ intervalMs, samples }), { headers: { 'content-type': 'application/json; charset=utf-8' } });
  });
}
