import { status } from '@grpc/grpc-js';
import { HcpError, type ReasonCode } from '@hcp/core';
import { reasonOfGrpcError } from '@hcp/platform';
import { grpcErrorOf } from './handle-vault.exception-filter';
import { PayloadKeyUnavailableError } from './payload-cipher';

describe('grpcErrorOf: the vault error -> status table', () => {
  it.each<[ReasonCode, status]>([
    ['INPUT_INVALID', status.INVALID_ARGUMENT],
    ['PAYLOAD_TOO_LARGE', status.RESOURCE_EXHAUSTED],
    ['HANDLE_NOT_OWNED', status.NOT_FOUND],
    ['HANDLE_EXPIRED', status.FAILED_PRECONDITION],
    ['AUDIT_UNAVAILABLE', status.UNAVAILABLE],
    ['PRINCIPAL_UNAUTHENTICATED', status.UNAUTHENTICATED],
  ])('%s -> %s, with the reason in the ErrorDetail', (reason, code) => {
    const e = grpcErrorOf(new HcpError(reason, 'why'));
    expect(status[e.code]).toBe(status[code]);
    expect(reasonOfGrpcError(e)).toEqual({ reason, detail: 'why' });
  });

  it('a key this replica lacks is FAILED_PRECONDITION without a reason code', () => {
    const e = grpcErrorOf(new PayloadKeyUnavailableError('k0'));
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/key k0/);
    expect(reasonOfGrpcError(e)).toBeUndefined();
  });
});
