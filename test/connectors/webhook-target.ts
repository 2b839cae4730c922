/** A real HTTP server standing in for a webhook receiver: it records what it gets and answers as told. */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signBody } from '../../src/connectors.js';

export interface Received {
  id: string;
  position: string;
  streamId: string;
  streamVersion: number;
  type: string;
  payload: unknown;
}

/** What to answer to the nth request (0-based): a status, or 'hang' (never answer). */
export type Behaviour = (n: number, messages: Received[]) => number | 'hang';

export interface WebhookTarget {
  url: string;
  /** Every message of every 2xx-answered request, in arrival order (duplicates included). */
  received: Received[];
  requests: number;
  /** Requests whose signature did not match. */
  badSignatures: number;
  behaviour: Behaviour;
  /** Waits this long before answering (a slow receiver). */
  delayMs: number;
  close(): Promise<void>;
}

const bodyOf = (request: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => (text += chunk));
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });

export async function startWebhookTarget(secret: string, behaviour: Behaviour = () => 200): Promise<WebhookTarget> {
  const target: WebhookTarget = { url: '', received: [], requests: 0, badSignatures: 0, behaviour, delayMs: 0, close: async () => {} };
  const server: Server = createServer(async (request, response) => {
    const body = await bodyOf(request);
    const n = target.requests++;
    if (request.headers['logline-signature'] !== signBody(secret, body)) {
      target.badSignatures++;
      response.writeHead(401).end();
      return;
    }
    const { messages } = JSON.parse(body) as { messages: Received[] };
    const answer = target.behaviour(n, messages);
    if (answer === 'hang') return; // the connector's timeout has to cut this off
    if (target.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, target.delayMs));
    if (answer >= 200 && answer < 300) target.received.push(...messages);
    response.writeHead(answer, { 'content-type': 'text/plain' }).end(answer >= 300 ? `status ${answer}` : '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  target.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return target;
}

/** The first arrival of each id, in arrival order: what a receiver that de-duplicates by id keeps. */
export const deduplicated = (received: Received[]): Received[] => {
  const seen = new Set<string>();
  return received.filter((message) => !seen.has(message.id) && seen.add(message.id));
};

/** Per stream, the stream versions in the order the receiver kept them. */
export const versionsByStream = (messages: Received[]): Map<string, number[]> => {
  const streams = new Map<string, number[]>();
  for (const m of messages) streams.set(m.streamId, [...(streams.get(m.streamId) ?? []), m.streamVersion]);
  return streams;
};

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
