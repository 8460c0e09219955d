import { Metadata, status } from '@grpc/grpc-js';
import {
  REASON_CODE_NUMBERS,
  reasonCodeFromNumber,
  type HcpError,
  type ReasonCode,
} from '@hcp/core';
import { core, invalidInput } from '@hcp/proto';

/** Trailing metadata key carrying a binary `hcp.core.v1.ErrorDetail`. */
export const ERROR_DETAIL_KEY = 'hcp-error-detail-bin';

/** The gRPC status a refusal with this reason travels as. */
export function grpcStatusFor(reason: ReasonCode): status {
  switch (reason) {
    case 'INPUT_INVALID':
    case 'PAYLOAD_TOO_LARGE':
      return status.INVALID_ARGUMENT;
    case 'PRINCIPAL_UNAUTHENTICATED':
      return status.UNAUTHENTICATED;
    case 'HANDLE_NOT_OWNED':
    case 'CAPABILITY_UNKNOWN':
    case 'SESSION_UNKNOWN':
      return status.NOT_FOUND;
    case 'POLICY_UNAVAILABLE':
    case 'AUDIT_UNAVAILABLE':
    case 'PROVIDER_UNAVAILABLE':
    case 'VAULT_UNAVAILABLE':
      return status.UNAVAILABLE;
    case 'APPROVAL_CONSUMED':
    case 'APPROVAL_EXPIRED':
    case 'HANDLE_EXPIRED':
    case 'SESSION_EXPIRED':
    case 'SESSION_NOT_INITIALIZED':
    case 'TOOL_DEFINITION_CHANGED':
      return status.FAILED_PRECONDITION;
    case 'ALLOWED':
      return status.OK;
    case 'PROTOCOL_VERSION_UNSUPPORTED':
    case 'PROTOCOL_VERSION_MISMATCH':
    case 'SESSION_FOREIGN':
    case 'NO_MATCHING_GRANT':
    case 'SCOPE_MISSING':
    case 'RESOURCE_DENIED':
    case 'RESOURCE_UNRESOLVABLE':
    case 'APPROVAL_REQUIRED':
    case 'APPROVAL_MISMATCH':
    case 'PIPE_TARGET_DENIED':
    case 'ARGUMENT_NOT_GRANTED':
      return status.PERMISSION_DENIED;
  }
}

/** A gRPC error as grpc-js servers send it: code, message and the typed detail in trailing metadata. */
export interface GrpcServiceError {
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;
}

/** Turns a typed refusal into the gRPC error the caller decodes with `reasonOfGrpcError`. */
export function grpcErrorFromHcp(err: HcpError): GrpcServiceError {
  const metadata = new Metadata();
  const detail = core.ErrorDetail.encode({
    reason: REASON_CODE_NUMBERS[err.reason],
    detail: err.message,
    // A recorded refusal names its audit entry's decision id (details.decisionId), so the caller
    // can quote it and an operator find the entry.
    decisionId: typeof err.details['decisionId'] === 'string' ? err.details['decisionId'] : '',
  }).finish();
  metadata.set(ERROR_DETAIL_KEY, Buffer.from(detail));
  return { code: grpcStatusFor(err.reason), details: err.message, metadata };
}

/** Reads the reason code from a failed call's trailing metadata; undefined when absent. */
export function reasonOfGrpcError(err: {
  metadata?: Metadata;
}): { reason: ReasonCode; detail: string; decisionId?: string } | undefined {
  const raw = err.metadata?.get(ERROR_DETAIL_KEY)[0];
  if (!(raw instanceof Buffer)) return undefined;
  try {
    const decoded = core.ErrorDetail.decode(raw);
    const reason = reasonCodeFromNumber(decoded.reason);
    if (reason === undefined) return undefined;
    return decoded.decisionId === ''
      ? { reason, detail: decoded.detail }
      : { reason, detail: decoded.detail, decisionId: decoded.decisionId };
  } catch {
    return undefined;
  }
}

/**
 * An input error with the offending field named, as INVALID_ARGUMENT: the same error the
 * libs/proto converters throw, so a service's own checks and the wire checks read alike.
 */
export function invalidArgument(field: string, message: string): HcpError {
  return invalidInput(field, message);
}

/**
 * A plain gRPC status without a reason code (e.g. NOT_FOUND for a missing
 * record), for cases no ReasonCode describes. The service's exception filter
 * sends code and message as they are.
 */
export class GrpcStatusError extends Error {
  override readonly name = 'GrpcStatusError';
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}
