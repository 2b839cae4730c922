/**
 * The connectors file of `logline serve --connectors <file.json>`, validated with zod: a bad
 * file is one InvalidArgumentError naming the field (`connectors[1].sink.url`). A sink that is
 * merely down at start is no error (the connector waits for it); a URL that cannot be parsed
 * or a host name that does not resolve is.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore } from '../core/types.js';
import { type ConnectorHandle, type ConnectorOptions, startConnector } from './connector.js';
import { httpSink } from './http-sink.js';
import { mqttSink } from './mqtt-sink.js';
import { natsSink } from './nats-sink.js';
import { rabbitMqSink } from './rabbitmq-sink.js';
import type { Sink } from './sink.js';

const urlWith = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const name = z.string().regex(/^[A-Za-z0-9_.:@-]{1,100}$/, { error: 'expected 1 to 100 characters of [A-Za-z0-9_.:@-]' });
const subjectToken = z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { error: 'expected dot-separated tokens of [A-Za-z0-9_-]' });

const sinkSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('http'),
      url: urlWith(['http:', 'https:']),
      secret: z.string().min(16, { error: 'a secret must be at least 16 characters' }).optional(),
      headers: z.record(z.string(), z.string()).optional(),
    }),
    z.strictObject({
      type: z.literal('rabbitmq'),
      url: urlWith(['amqp:', 'amqps:']),
      exchange: z.string().min(1).max(255),
    }),
    z.strictObject({
      type: z.literal('nats'),
      servers: urlWith(['nats:', 'tls:']),
      subject: subjectToken,
    }),
    z.strictObject({
      type: z.literal('mqtt'),
      url: urlWith(['mqtt:', 'mqtts:', 'ws:', 'wss:']),
      topic: z.string().regex(/^[^+#]+$/, { error: "expected a topic without '+' or '#'" }),
      clientId: z.string().min(1).optional(),
    }),
  ],
  { error: "expected a sink type: 'http', 'rabbitmq', 'nats' or 'mqtt'" },
);

const connectorSchema = z.strictObject({
  name,
  source: z
    .strictObject({
      category: z
        .string()
        .regex(/^[^-\s]+$/, { error: "expected a stream category (no '-' or spaces)" })
        .optional(),
      streamPrefix: z.string().min(1).optional(),
      types: z.array(z.string().min(1)).optional(),
      from: z
        .union([z.literal('start'), z.literal('end'), z.string().regex(/^\d{1,19}$/, { error: "expected 'start', 'end' or a position" })])
        .optional(),
    })
    .refine((source) => !(source.category && source.streamPrefix), { error: 'give category or streamPrefix, not both' })
    .optional(),
  sink: sinkSchema,
  mapping: z.enum(['event', 'notification']).optional(),
  delivery: z
    .strictObject({
      batchSize: z.int().min(1).max(10_000).optional(),
      concurrency: z.int().min(1).max(64).optional(),
      queue: z.int().min(0).max(10_000).optional(),
      timeoutMs: z.int().min(1).max(600_000).optional(),
      quickRetries: z.int().min(0).max(20).optional(),
      retry: z
        .strictObject({
          maxAttempts: z.int().min(1).optional(),
          initialDelayMs: z.int().min(0).optional(),
          maxDelayMs: z.int().min(0).optional(),
        })
        .optional(),
      breaker: z.strictObject({ failures: z.int().min(1).max(1000).optional(), halfOpenAfterMs: z.int().min(1).optional() }).optional(),
      partitions: z.int().min(1).max(4096).optional(),
      leaseMs: z.int().min(100).optional(),
      checkpointMs: z.int().min(0).max(60_000).optional(),
      lingerMs: z.int().min(0).max(10_000).optional(),
    })
    .optional(),
});

export const connectorsFileSchema = z.strictObject({ connectors: z.array(connectorSchema) });
export type ConnectorConfig = z.output<typeof connectorSchema>;

const fieldPath = (path: PropertyKey[]) =>
  path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');

/** Parses and validates a connectors file's text; errors name the field and the file. */
export function parseConnectorsConfig(text: string, source: string): ConnectorConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`connectors file ${source}`, `it is not JSON (${(error as Error).message})`, '{"connectors":[…]}');
  }
  const parsed = connectorsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : '';
    throw new InvalidArgumentError(
      fieldPath(issue.path) || `connectors file ${source}`,
      `${issue.message}${more}`,
      'see docs/connectors.md',
    );
  }
  const seen = new Set<string>();
  parsed.data.connectors.forEach((connector, i) => {
    if (seen.has(connector.name))
      throw new InvalidArgumentError(`connectors[${i}].name`, `'${connector.name}' is used twice`, 'unique names');
    seen.add(connector.name);
  });
  return parsed.data.connectors;
}

export function loadConnectorsConfig(file: string): ConnectorConfig[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError('--connectors', `cannot read ${file} (${(error as Error).message})`, 'a readable JSON file');
  }
  return parseConnectorsConfig(text, file);
}

const sinkUrl = (sink: ConnectorConfig['sink']) => (sink.type === 'nats' ? sink.servers.split(',') : [sink.url]);

/** A host name that does not resolve is a configuration error; a host that is down is not. */
export async function checkReachable(configs: ConnectorConfig[]): Promise<void> {
  for (const [i, config] of configs.entries()) {
    for (const url of sinkUrl(config.sink)) {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      if (isIP(host)) continue;
      try {
        await lookup(host);
      } catch (error) {
        const field = `connectors[${i}].sink.${config.sink.type === 'nats' ? 'servers' : 'url'}`;
        throw new InvalidArgumentError(
          field,
          `the host '${host}' does not resolve (${(error as { code?: string }).code ?? error})`,
          'a reachable host name',
        );
      }
    }
  }
}

export function sinkFromConfig(config: ConnectorConfig): Sink {
  const { sink } = config;
  switch (sink.type) {
    case 'http':
      return httpSink({ url: sink.url, secret: sink.secret, headers: sink.headers, connector: config.name });
    case 'rabbitmq':
      return rabbitMqSink({ url: sink.url, exchange: sink.exchange });
    case 'nats':
      return natsSink({ servers: sink.servers, subject: sink.subject });
    case 'mqtt':
      return mqttSink({ url: sink.url, topic: sink.topic, clientId: sink.clientId });
  }
}

export function optionsFromConfig(config: ConnectorConfig): ConnectorOptions {
  const from = config.source?.from;
  return {
    name: config.name,
    source: { ...config.source, from: from === undefined || from === 'start' || from === 'end' ? from : BigInt(from) },
    sink: sinkFromConfig(config),
    mapping: config.mapping,
    delivery: config.delivery,
  };
}

/** Starts every configured connector; on a failure, stops those already started. */
export async function startConnectors(store: EventStore, configs: ConnectorConfig[]): Promise<ConnectorHandle[]> {
  await checkReachable(configs);
  const started: ConnectorHandle[] = [];
  try {
    for (const config of configs) started.push(await startConnector(store, optionsFromConfig(config)));
  } catch (error) {
    await Promise.allSettled(started.map((connector) => connector.stop()));
    throw error;
  }
  return started;
}
