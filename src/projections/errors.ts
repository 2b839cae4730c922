/** Errors of the projections layer. Codes are stable: the server maps them to HTTP answers. */
import { type ErrorCode, LoglineError } from '../core/errors.js';

/** waitForPosition gave up: the projection had not processed `position` within `timeoutMs`. */
export class PositionTimeoutError extends LoglineError {
  readonly projection: string;
  readonly position: bigint;
  readonly reached: bigint;
  constructor(projection: string, position: bigint, reached: bigint, timeoutMs: number) {
    super(
      'PositionTimeout' satisfies ErrorCode,
      `Projection '${projection}' had processed up to position ${reached}, not ${position}, after waiting ${timeoutMs} ms.`,
      { projection, position: String(position), reached: String(reached), timeoutMs },
    );
    this.projection = projection;
    this.position = position;
    this.reached = reached;
  }
}

/** A projection or subscription stopped (configured `onFailure: 'stop'`, superseded, or closed). */
export class ProjectionStoppedError extends LoglineError {
  constructor(projection: string, reason: string, cause?: unknown) {
    super('ProjectionStopped' satisfies ErrorCode, `Projection '${projection}' is stopped: ${reason}.`, { projection, reason }, { cause });
  }
}
