/**
 * Admission control for appends: bounds what hostile or merely heavy load can make the server
 * hold in memory. Two budgets, both checked without waiting (a full budget is an immediate
 * `503 Overloaded` with Retry-After, never a queue that grows):
 *
 * - request-body memory: an append is charged BODY_MEMORY_FACTOR × its body bytes from the
 *   moment its body starts arriving until the store has answered it, because the raw bytes, the
 *   decoded text, the parsed events and the store's encoded rows all live that long;
 * - queued appends: parsed appends handed to the store and not answered yet (the store's own
 *   write queue, e.g. PostgreSQL's, never holds more than this many from the server).
 */
import { LoglineError } from '../core/errors.js';

/**
 * Peak memory of an append in flight per byte of its body: its bytes, the decoded string, the
 * parsed and validated events and the store's serialized rows. Measured with 16 MiB appends
 * (test/server/overload.test.ts); garbage left after an append is answered is V8's to bound
 * (docs/http.md, "Limits").
 */
export const BODY_MEMORY_FACTOR = 4;

export interface AdmissionLimits {
  /** Memory budget for appends in flight, in bytes (each is charged BODY_MEMORY_FACTOR × its body). */
  maxInFlightBytes: number;
  /** Appends handed to the store and not yet answered. */
  maxQueuedAppends: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = { maxInFlightBytes: 256 * 1024 * 1024, maxQueuedAppends: 1000 };

export class OverloadedError extends LoglineError {
  constructor(resource: 'memory' | 'appends', limit: number) {
    super(
      'Overloaded',
      resource === 'memory'
        ? `The server already holds its limit of ${limit} bytes of appends in flight; retry shortly.`
        : `The server already has its limit of ${limit} appends waiting for the store; retry shortly.`,
      { resource, limit },
    );
  }
}

export class Admission {
  private bytes = 0;
  private appends = 0;
  constructor(readonly limits: AdmissionLimits) {}

  /** Bytes charged now (for /metrics). */
  get inFlightBytes(): number {
    return this.bytes;
  }

  get queuedAppends(): number {
    return this.appends;
  }

  /** Charges `bodyBytes` more body bytes, or returns false (charging nothing) when they do not fit. */
  tryChargeBody(bodyBytes: number): boolean {
    const cost = bodyBytes * BODY_MEMORY_FACTOR;
    if (this.bytes + cost > this.limits.maxInFlightBytes) return false;
    this.bytes += cost;
    return true;
  }

  releaseBody(bodyBytes: number): void {
    this.bytes -= bodyBytes * BODY_MEMORY_FACTOR;
  }

  /** Takes a place in the store queue; throws OverloadedError when there is none. Returns its release. */
  enterQueue(): () => void {
    if (this.appends >= this.limits.maxQueuedAppends) throw new OverloadedError('appends', this.limits.maxQueuedAppends);
    this.appends++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.appends--;
    };
  }
}
