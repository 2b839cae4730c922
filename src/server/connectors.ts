/**
 * Connectors in the HTTP API (mounted by serve.ts when `--connectors` is given): listing,
 * parked events, replay, skip, pause and resume; and their gauges for /metrics. Listing needs
 * read on every stream (like subscriptions); control needs write on every stream, since a
 * replay sends events of any stream out again.
 */
import type { Context, Hono } from 'hono';
import type { ConnectorHandle } from '../connectors/connector.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { ServerEnv } from './app.js';
import { requireRight } from './auth.js';
import { NotFoundError } from './http-errors.js';
import { stringify, toWire } from './json.js';
import type { Gauge } from './metrics.js';
import { noQuery, queryOf } from './schemas.js';

const json = (body: unknown, status = 200) =>
  new Response(stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });

const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2, paused: 3 } as const;

/** `{}`, an empty body, or `{"ids":[1,2]}`; anything else is a 400 naming the field. */
async function idsFrom(c: Context<ServerEnv>): Promise<number[] | undefined> {
  const text = await c.req.text();
  if (text.trim() === '') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError('body', `it is not valid JSON (${(error as Error).message})`, 'a JSON object {"ids":[…]} or nothing');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((key) => key !== 'ids')) {
    throw new InvalidArgumentError('body', `got ${text.slice(0, 100)}`, 'a JSON object {"ids":[…]} or nothing');
  }
  const ids = (body as { ids?: unknown }).ids;
  if (ids === undefined) return undefined;
  if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id) && id > 0)) {
    throw new InvalidArgumentError('ids', `got ${JSON.stringify(ids).slice(0, 100)}`, 'an array of parked-event ids (positive integers)');
  }
  return ids;
}

export async function describeConnector(connector: ConnectorHandle) {
  const progress = await connector.progress();
  return { ...connector.stats(), ...progress };
}

export function mountConnectorRoutes(app: Hono<ServerEnv>, connectors: ConnectorHandle[]): void {
  const byName = (name: string) => {
    const found = connectors.find((connector) => connector.name === name);
    if (!found) throw new NotFoundError(`Connector '${name}'`, { name });
    return found;
  };
  // None of these routes takes query parameters: an unknown or repeated one is a 400, as everywhere.
  const canRead = (c: Context<ServerEnv>) => {
    queryOf(c, noQuery);
    requireRight(c.get('key'), 'read', '', 'connectors');
  };
  const canControl = (c: Context<ServerEnv>) => {
    queryOf(c, noQuery);
    requireRight(c.get('key'), 'write', '', 'connectors (control)');
  };

  app.get('/v1/connectors', async (c) => {
    canRead(c);
    return json({ connectors: await Promise.all(connectors.map(describeConnector)) });
  });
  app.get('/v1/connectors/:name', async (c) => {
    canRead(c);
    return json(await describeConnector(byName(c.req.param('name'))));
  });
  app.get('/v1/connectors/:name/parked', async (c) => {
    canRead(c);
    const parked = await byName(c.req.param('name')).listParked();
    return json({ parked: parked.map((item) => ({ ...item, event: toWire(item.event) })) });
  });
  app.post('/v1/connectors/:name/parked/replay', async (c) => {
    canControl(c);
    const connector = byName(c.req.param('name'));
    const result = await connector.replayParked(await idsFrom(c));
    return json({
      replayed: result.replayed,
      failed: result.failed.map(({ id, error }) => ({ id, error: String((error as Error)?.message ?? error) })),
    });
  });
  app.post('/v1/connectors/:name/parked/skip', async (c) => {
    canControl(c);
    const connector = byName(c.req.param('name'));
    return json({ skipped: await connector.skipParked(await idsFrom(c)) });
  });
  app.post('/v1/connectors/:name/pause', (c) => {
    canControl(c);
    const connector = byName(c.req.param('name'));
    connector.pause();
    return json(connector.stats());
  });
  app.post('/v1/connectors/:name/resume', (c) => {
    canControl(c);
    const connector = byName(c.req.param('name'));
    connector.resume();
    return json(connector.stats());
  });
}

/** Gauges for /metrics: breaker state and deliveries per connector. */
export function connectorGauges(connectors: ConnectorHandle[]): Gauge[] {
  const stats = connectors.map((connector) => connector.stats());
  const labels = (s: (typeof stats)[number]) => ({ connector: s.name, sink: s.sink.type });
  return [
    {
      name: 'logline_connector_breaker_state',
      help: 'Circuit breaker of each connector sink: 0 closed, 1 half-open, 2 open, 3 paused.',
      samples: stats.map((s) => ({ labels: labels(s), value: BREAKER_VALUE[s.breaker] })),
    },
    {
      name: 'logline_connector_breaker_opened_total',
      help: 'Times the breaker opened since the server started.',
      type: 'counter',
      samples: stats.map((s) => ({ labels: labels(s), value: s.breakerOpened })),
    },
    {
      name: 'logline_connector_delivered_total',
      help: 'Messages delivered by each connector since the server started.',
      type: 'counter',
      samples: stats.map((s) => ({ labels: labels(s), value: s.delivered })),
    },
    {
      name: 'logline_connector_failed_deliveries_total',
      help: 'Failed delivery attempts (after quick retries) by each connector since the server started.',
      type: 'counter',
      samples: stats.map((s) => ({ labels: labels(s), value: s.failedDeliveries })),
    },
  ];
}
