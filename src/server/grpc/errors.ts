/**
 * Logline errors as gRPC statuses with the `exception` trailers the KurrentDB clients read
 * (their error classes are chosen from that trailer first, then from the status code).
 */
import type { ServiceError } from '@grpc/grpc-js';
import { LoglineError } from '../../core/errors.js';
import type { Protocol } from './protocol.js';

export function toServiceError(protocol: Protocol, error: unknown): Partial<ServiceError> {
  const { status, Metadata } = protocol.grpc;
  const metadata = new Metadata();
  const details = error instanceof Error ? error.message : String(error);
  if (!(error instanceof LoglineError)) return { code: status.INTERNAL, details, metadata };
  switch (error.code) {
    case 'Unauthorized':
      return { code: status.UNAUTHENTICATED, details, metadata };
    case 'Forbidden':
      metadata.set('exception', 'access-denied');
      return { code: status.PERMISSION_DENIED, details, metadata };
    case 'AppendTooLarge':
      if (error.details.limit === 'bytes') {
        metadata.set('exception', 'maximum-append-size-exceeded');
        metadata.set('maximum-append-size', String(error.details.max));
      }
      return { code: status.INVALID_ARGUMENT, details, metadata };
    case 'InvalidStreamId':
    case 'InvalidEvent':
    case 'InvalidArgument':
    case 'EventTooLarge':
      return { code: status.INVALID_ARGUMENT, details, metadata };
    case 'IdempotencyConflict':
      return { code: status.ALREADY_EXISTS, details, metadata };
    case 'PositionBeyondHead':
      return { code: status.OUT_OF_RANGE, details, metadata };
    case 'StreamDeleted':
      metadata.set('exception', 'stream-deleted');
      metadata.set('stream-name', String(error.details.stream));
      return { code: status.FAILED_PRECONDITION, details, metadata };
    case 'WrongExpectedVersion': {
      // Outside Append (which answers in its response): Delete and Tombstone. Kurrent revisions
      // are Logline versions − 1; -1 no stream, -2 any, -4 stream exists.
      const { stream, expected, actual } = error.details as { stream: string; expected: unknown; actual: number };
      metadata.set('exception', 'wrong-expected-version');
      metadata.set('stream-name', stream);
      const revision = expected === 'no_stream' ? -1 : expected === 'any' ? -2 : expected === 'exists' ? -4 : Number(expected) - 1;
      metadata.set('expected-version', String(revision));
      if (actual > 0) metadata.set('actual-version', String(actual - 1));
      return { code: status.FAILED_PRECONDITION, details, metadata };
    }
    case 'StoreClosed':
    case 'StoreUnavailable':
      // UNAVAILABLE makes the clients reconnect and retry, which is what an outage calls for.
      return { code: status.UNAVAILABLE, details, metadata };
    default:
      return { code: status.INTERNAL, details, metadata };
  }
}
