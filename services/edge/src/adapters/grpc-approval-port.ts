import { approvalFromProto, type grants } from '@hcp/proto';
import type { ApprovalPort } from '../call/ports';
import { unary, type GrpcAdapterOptions } from './grpc-call';

/**
 * The approval port over grant-store's gRPC API: RequestApproval files a pending approval bound to
 * one call, ConsumeApproval uses an approved one exactly once (grant-store re-checks principal and
 * binding digest atomically). Deciding an approval is not here: only an approver principal does
 * that, through grant-store's DecideApproval.
 */
export function grpcApprovalPort(
  client: grants.GrantStoreClient,
  opts: GrpcAdapterOptions = {},
): ApprovalPort {
  return {
    async request(input) {
      const ttl =
        input.ttlMs === undefined
          ? undefined
          : { seconds: Math.floor(input.ttlMs / 1000), nanos: (input.ttlMs % 1000) * 1_000_000 };
      const res = await unary(
        client.requestApproval.bind(client),
        {
          principalId: input.principalId,
          capabilityId: input.capabilityId,
          bindingDigest: input.bindingDigest,
          ttl,
          summary: input.summary,
        },
        opts,
      );
      if (res.approval === undefined)
        throw new Error('RequestApproval: grant-store answered without an approval');
      return approvalFromProto(res.approval);
    },

    async consume(input) {
      await unary(
        client.consumeApproval.bind(client),
        {
          approvalId: input.approvalId,
          principalId: input.principalId,
          bindingDigest: input.bindingDigest,
        },
        opts,
      );
    },
  };
}
