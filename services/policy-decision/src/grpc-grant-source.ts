import { status, type ServiceError } from '@grpc/grpc-js';
import type { Approval } from '@hcp/core';
import { callUnary } from '@hcp/platform';
import { approvalFromProto, capabilityFromProto, grantFromProto, type grants } from '@hcp/proto';
import type { GrantSource, ManifestSnapshot, PrincipalSnapshot } from './grant-source';

/** grant-store over gRPC, every call bounded by a deadline. */
export class GrpcGrantSource implements GrantSource {
  constructor(
    private readonly client: grants.GrantStoreClient,
    private readonly deadlineMs: number,
  ) {}

  async principal(principalId: string): Promise<PrincipalSnapshot> {
    const res = await callUnary(
      this.client.getPrincipalGrants.bind(this.client),
      { principalId },
      { deadlineMs: this.deadlineMs },
    );
    return { grants: res.grants.map(grantFromProto), revision: res.revision };
  }

  async manifest(): Promise<ManifestSnapshot> {
    const res = await callUnary(
      this.client.listCapabilities.bind(this.client),
      { provider: '' },
      { deadlineMs: this.deadlineMs },
    );
    return {
      capabilities: new Map(res.capabilities.map((c) => [c.id, capabilityFromProto(c)])),
      revision: res.manifestRevision,
    };
  }

  async approval(approvalId: string): Promise<Approval | undefined> {
    try {
      const res = await callUnary(
        this.client.getApproval.bind(this.client),
        { approvalId },
        { deadlineMs: this.deadlineMs },
      );
      return res.approval ? approvalFromProto(res.approval) : undefined;
    } catch (err: unknown) {
      if ((err as ServiceError).code === status.NOT_FOUND) return undefined;
      throw err;
    }
  }
}
