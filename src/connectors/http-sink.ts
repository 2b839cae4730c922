/**
 * Webhook sink: one POST per batch, body `{"connector":…,"messages":[…]}`, signed with
 * HMAC-SHA256 over the exact body bytes when a secret is configured. 2xx = delivered;
 * 408, 429 and 5xx = the receiver is struggling (retry); a redirect is not followed (retry:
 * a moved receiver is a configuration to fix, not a message to park); any other status = the
 * receiver refuses these messages (poison).
 *
 * Sent with node:http(s) over a keep-alive agent of its own rather than fetch: with connectors
 * in the writer's process every POST's CPU time is taken from the appends, and fetch cost
 * several times as much per request in `npm run bench -- connectors` (docs/benchmarks.md).
 */
import { createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type OutboundMessage, PoisonMessageError, type Sink, SinkUnavailableError } from './sink.js';

export interface HttpSinkOptions {
  url: string;
  /** Shared secret: adds `Logline-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  secret?: string;
  headers?: Record<string, string>;
  /** Named in the body, so one receiver can tell connectors apart. */
  connector: string;
}

export const SIGNATURE_HEADER = 'logline-signature';

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Status and body text (at most 64 KiB kept) of one POST; rejects on a network error or an abort. */
function post(url: URL, agent: HttpAgent, headers: Record<string, string>, body: Buffer, signal: AbortSignal) {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send(url, { method: 'POST', agent, headers, signal }, (response: IncomingMessage) => {
      let text = '';
      response.setEncoding('utf8');
      // Drain the body so the connection is reused.
      response.on('data', (chunk: string) => {
        if (text.length < 65_536) text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function httpSink(options: HttpSinkOptions): Sink {
  const url = new URL(options.url);
  const shown = new URL(options.url);
  shown.password = '';
  const target = shown.toString();
  const agent = url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  // Basic auth in the URL, as fetch would have sent it.
  const authorization = url.username
    ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
    : undefined;
  url.username = '';
  url.password = '';
  return {
    type: 'http',
    target,
    async deliver(messages: OutboundMessage[], signal: AbortSignal) {
      const text = JSON.stringify({ connector: options.connector, messages });
      const body = Buffer.from(text);
      // The ids travel in the body only: a header of 500 ids would pass the receiver's header limit (431).
      const headers: Record<string, string> = {
        ...(authorization ? { authorization } : {}),
        ...options.headers,
        'content-type': 'application/json',
        'content-length': String(body.length),
      };
      if (options.secret) headers[SIGNATURE_HEADER] = signBody(options.secret, text);
      let answer: { status: number; text: string };
      try {
        answer = await post(url, agent, headers, body, signal);
      } catch (error) {
        throw new SinkUnavailableError(`POST ${target} failed: ${(error as Error).message}`, { cause: error });
      }
      const { status } = answer;
      if (status >= 200 && status < 300) return;
      const summary = `POST ${target} answered ${status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ''}`;
      if (status === 408 || status === 429 || status >= 500 || (status >= 300 && status < 400)) {
        throw new SinkUnavailableError(status < 400 ? `${summary} (redirects are not followed)` : summary);
      }
      throw new PoisonMessageError(summary);
    },
    async close() {
      agent.destroy();
    },
  };
}
