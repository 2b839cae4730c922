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
    case 'StoreClosed':
    case 'StoreUnavailable':
      // UNAVAILABLE makes the clients reconnect and retry, which is what an outage calls for.
      return { code: status.UNAVAILABLE, details, metadata };
    default:
      return { code: status.INTERNAL, details, metadata };
  }
}
