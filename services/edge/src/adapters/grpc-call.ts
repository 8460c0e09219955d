import type { ServiceError } from '@grpc/grpc-js';
import { HcpError } from '@hcp/core';
import { callUnary, reasonOfGrpcError, type UnaryMethod } from '@hcp/platform';

/** Bounds every adapter over gRPC shares; the platform default deadline applies when absent. */
export interface GrpcAdapterOptions {
  /** Deadline of each call in ms; default 2000 (callUnary's). */
  readonly deadlineMs?: number;
}

/**
 * The failure of a gRPC call in the call path's terms: an HcpError when the server named a reason
 * code in its ErrorDetail, the original error otherwise (the call path then fails closed with the
 * port's fallback reason, e.g. POLICY_UNAVAILABLE).
 */
export function fromGrpcError(err: unknown): unknown {
  if (typeof err !== 'object' || err === null || !('metadata' in err)) return err;
  const found = reasonOfGrpcError(err as Pick<ServiceError, 'metadata'>);
  if (found === undefined) return err;
  const code = (err as Partial<ServiceError>).code;
  // A refusal the server recorded names its decision id: the call path passes it on instead of
  // recording the refusal a second time.
  return new HcpError(found.reason, found.detail, {
    ...(typeof code === 'number' ? { grpcCode: code } : {}),
    ...(found.decisionId === undefined ? {} : { decisionId: found.decisionId }),
  });
}

/** The gRPC status code of a failed call, if it is one. */
export function grpcCodeOf(err: unknown): number | undefined {
  const code = (err as Partial<ServiceError> | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** callUnary with the adapter's deadline, and a reason-carrying failure re-thrown as HcpError. */
export async function unary<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  options: GrpcAdapterOptions,
): Promise<Res> {
  try {
    return await callUnary(
      method,
      request,
      options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
    );
  } catch (err: unknown) {
    throw fromGrpcError(err);
  }
}
