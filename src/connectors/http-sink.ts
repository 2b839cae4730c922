/**
 * Webhook sink: one POST per batch, body `{"connector":…,"messages":[…]}`, signed with
 * HMAC-SHA256 over the exact body bytes when a secret is configured. 2xx = delivered;
 * 408, 429 and 5xx = the receiver is struggling (retry); any other status = the receiver
 * refuses these messages (poison).
 */
import { createHmac } from 'node:crypto';
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

export function httpSink(options: HttpSinkOptions): Sink {
  const target = new URL(options.url);
  target.password = '';
  return {
    type: 'http',
    target: target.toString(),
    async deliver(messages: OutboundMessage[], signal: AbortSignal) {
      const body = JSON.stringify({ connector: options.connector, messages });
      // The ids travel in the body only: a header of 500 ids would pass the receiver's header limit (431).
      const headers: Record<string, string> = { ...options.headers, 'content-type': 'application/json' };
      if (options.secret) headers[SIGNATURE_HEADER] = signBody(options.secret, body);
      let response: Response;
      try {
        response = await fetch(options.url, { method: 'POST', body, headers, signal, redirect: 'error' });
      } catch (error) {
        throw new SinkUnavailableError(`POST ${target} failed: ${(error as Error).message}`, { cause: error });
      }
      // Drain the body so the connection is reused.
      const text = await response.text().catch(() => '');
      if (response.ok) return;
      const summary = `POST ${target} answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
      if (response.status === 408 || response.status === 429 || response.status >= 500) throw new SinkUnavailableError(summary);
      throw new PoisonMessageError(summary);
    },
    async close() {},
  };
}
