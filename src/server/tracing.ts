/** A SERVER span per HTTP request (OpenTelemetry, when an SDK is registered; see docs/observability.md). */
import type { MiddlewareHandler } from 'hono';
import { traceIncoming } from '../core/tracing.js';

export function traceRequests(): MiddlewareHandler {
  return (c, next) =>
    traceIncoming(
      `${c.req.method}`,
      { 'http.request.method': c.req.method, 'url.path': c.req.path },
      c.req.header('traceparent'),
      async (span) => {
        await next();
        if (!span) return;
        // The route template, not the path: span names stay few (one per route, not per stream id).
        if (c.req.routePath && c.req.routePath !== '*' && c.req.routePath !== '/*') {
          span.updateName(`${c.req.method} ${c.req.routePath}`);
          span.setAttribute('http.route', c.req.routePath);
        }
        span.setAttribute('http.response.status_code', c.res.status);
        if (c.res.status >= 500) span.setStatus({ code: 2 });
      },
    );
}
