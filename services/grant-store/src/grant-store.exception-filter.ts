import { Metadata, status } from '@grpc/grpc-js';
import { Catch, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { HcpError, REASON_CODE_NUMBERS, type ReasonCode } from '@hcp/core';
import { ERROR_DETAIL_KEY, grpcErrorFromHcp, type GrpcServiceError } from '@hcp/platform';
import { core } from '@hcp/proto';
import { ApproverRequiredError, FailedPreconditionError, NotFoundError } from './errors';

/** Every typed error grant-store answers with; anything else is a fault (INTERNAL). */
export type GrantStoreError =
  HcpError | NotFoundError | FailedPreconditionError | ApproverRequiredError;

/** The one place grant-store's typed errors become gRPC statuses with an ErrorDetail. */
export function grpcErrorOf(err: GrantStoreError): GrpcServiceError {
  if (err instanceof HcpError) return grpcErrorFromHcp(err);
  const code =
    err instanceof NotFoundError
      ? status.NOT_FOUND
      : err instanceof ApproverRequiredError
        ? status.PERMISSION_DENIED
        : status.FAILED_PRECONDITION;
  return {
    code,
    details: err.message,
    metadata: detailMetadata(err.reason, err.message, err.decisionId),
  };
}

function detailMetadata(
  reason: ReasonCode | undefined,
  detail: string,
  decisionId: string | undefined,
): Metadata {
  const metadata = new Metadata();
  const encoded = core.ErrorDetail.encode({
    reason: reason === undefined ? 0 : REASON_CODE_NUMBERS[reason],
    detail,
    // A recorded refusal links to its audit entry.
    decisionId: decisionId ?? '',
  }).finish();
  metadata.set(ERROR_DETAIL_KEY, Buffer.from(encoded));
  return metadata;
}

/**
 * Controller-scoped, so it runs before the platform's global filter: that one
 * knows only HcpError, while grant-store also answers NOT_FOUND, the
 * proto's FAILED_PRECONDITION for unusable approvals, and PERMISSION_DENIED
 * for a non-operator token on an operator RPC. Anything else falls
 * through to the global filter (INTERNAL, logged).
 */
@Catch(HcpError, NotFoundError, FailedPreconditionError, ApproverRequiredError)
export class GrantStoreExceptionFilter implements RpcExceptionFilter<GrantStoreError> {
  catch(err: GrantStoreError): Observable<never> {
    const e = grpcErrorOf(err);
    // grpc-js reads code, details and metadata off the error object Nest hands to the callback.
    return throwError(() => ({
      code: e.code,
      details: e.details,
      message: e.details,
      metadata: e.metadata,
    }));
  }
}
