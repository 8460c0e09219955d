import { Metadata, status } from '@grpc/grpc-js';
import { Catch, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { HcpError } from '@hcp/core';
import { ERROR_DETAIL_KEY, grpcErrorFromHcp, type GrpcServiceError } from '@hcp/platform';
import { core } from '@hcp/proto';
import { PayloadKeyUnavailableError } from './payload-cipher';

/**
 * The one place the vault's typed errors become gRPC statuses. Differs from
 * the platform table in one place, by the proto's contract: PAYLOAD_TOO_LARGE
 * is RESOURCE_EXHAUSTED (a limit, not a malformed request). A row sealed under
 * a key this replica lacks is FAILED_PRECONDITION without a reason code: a
 * deployment fault, not a policy outcome.
 */
export function grpcErrorOf(err: HcpError | PayloadKeyUnavailableError): GrpcServiceError {
  if (err instanceof PayloadKeyUnavailableError) {
    const metadata = new Metadata();
    const detail = core.ErrorDetail.encode({
      reason: 0,
      detail: err.message,
      decisionId: '',
    }).finish();
    metadata.set(ERROR_DETAIL_KEY, Buffer.from(detail));
    return { code: status.FAILED_PRECONDITION, details: err.message, metadata };
  }
  const e = grpcErrorFromHcp(err);
  return err.reason === 'PAYLOAD_TOO_LARGE' ? { ...e, code: status.RESOURCE_EXHAUSTED } : e;
}

/**
 * Controller-scoped, so it runs before the platform's global filter (which
 * knows only HcpError and its shared table). Anything else falls through to
 * the global filter: INTERNAL, logged.
 */
@Catch(HcpError, PayloadKeyUnavailableError)
export class HandleVaultExceptionFilter implements RpcExceptionFilter<
  HcpError | PayloadKeyUnavailableError
> {
  catch(err: HcpError | PayloadKeyUnavailableError): Observable<never> {
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
