import { status } from '@grpc/grpc-js';
import { HcpError } from '@hcp/core';
import { reasonOfGrpcError } from '@hcp/platform';
import { ApproverRequiredError, FailedPreconditionError, NotFoundError } from './errors';
import { grpcErrorOf } from './grant-store.exception-filter';

describe('grant-store errors -> gRPC status', () => {
  it('maps NotFoundError to NOT_FOUND (CAPABILITY_UNKNOWN for capabilities)', () => {
    const grant = grpcErrorOf(new NotFoundError('grant', 'grt_1'));
    expect(grant.code).toBe(status.NOT_FOUND);
    expect(reasonOfGrpcError(grant)).toBeUndefined();
    const cap = grpcErrorOf(new NotFoundError('capability', 'fs/x'));
    expect(cap.code).toBe(status.NOT_FOUND);
    expect(reasonOfGrpcError(cap)?.reason).toBe('CAPABILITY_UNKNOWN');
  });

  it('maps unusable approvals to FAILED_PRECONDITION with the reason, as the proto says', () => {
    for (const reason of [
      'APPROVAL_REQUIRED',
      'APPROVAL_MISMATCH',
      'APPROVAL_CONSUMED',
      'APPROVAL_EXPIRED',
    ] as const) {
      const e = grpcErrorOf(new FailedPreconditionError('x', reason));
      expect(e.code).toBe(status.FAILED_PRECONDITION);
      expect(reasonOfGrpcError(e)?.reason).toBe(reason);
    }
  });

  it('maps INPUT_INVALID to INVALID_ARGUMENT through the platform table', () => {
    const e = grpcErrorOf(new HcpError('INPUT_INVALID', 'principalId: is required'));
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(reasonOfGrpcError(e)).toEqual({
      reason: 'INPUT_INVALID',
      detail: 'principalId: is required',
    });
  });

  it('maps a non-operator token to PERMISSION_DENIED with PRINCIPAL_UNAUTHENTICATED', () => {
    const e = grpcErrorOf(new ApproverRequiredError('agent', 'DecideApproval'));
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(reasonOfGrpcError(e)?.reason).toBe('PRINCIPAL_UNAUTHENTICATED');
    expect(e.details).toMatch(/DecideApproval needs an operator token.*agent/);
  });
});
