/**
 * What a connector hands to a sink, and how sinks say why a delivery failed. A sink only
 * delivers; retries, the circuit breaker, the bulkhead and parking are the connector's.
 */
import { DriverMissingError } from '../core/errors.js';
import type { JsonValue } from '../core/types.js';

/** One event as it leaves Logline: its id is the receiver's de-duplication key. */
export interface OutboundMessage {
  /** The event id: the de-duplication key (message id / header) on every sink. */
  id: string;
  /** Position in the global log, as a decimal string. */
  position: string;
  streamId: string;
  streamVersion: number;
  type: string;
  /** The stream id up to its first '-' (the whole id when it has none). */
  category: string;
  /** What the mapping made of the event. */
  payload: JsonValue;
}

export interface Sink {
  /** 'http', 'rabbitmq', 'nats' or 'mqtt'. */
  readonly type: string;
  /** Where it delivers, without credentials (for listings and logs). */
  readonly target: string;
  /** Delivers the messages, in order; resolves once the receiver has them (2xx, confirm, ack). */
  deliver(messages: OutboundMessage[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
  /** Loads what the sink needs (its optional broker client) without connecting: a missing one fails the start. */
  prepare?(): Promise<void>;
}

/**
 * The receiver refused the message itself (HTTP 4xx other than 408/429, a mapping that threw):
 * sending it again will not help, so after the retry budget it is parked.
 */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

/** The receiver is away or failing (5xx, 408, 429, connection refused): retry later, never park. */
export class SinkUnavailableError extends Error {
  override readonly name = 'SinkUnavailableError';
}

/** Imports an optional broker client; a missing one is DriverMissingError naming the package. */
export async function loadDriver<T>(sink: string, pkg: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') throw new DriverMissingError(`${sink} connector`, pkg, error);
    throw error;
  }
}

/** A URL without its password, for listings and logs. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
