import type { Grant } from '@hcp/core';
import { callUnary, createGrpcClient } from '@hcp/platform';
import { grantToProto, grants } from '@hcp/proto';

/** Writes the given grants through grant-store's public API (the demo world of `pnpm start`). */
export async function seedDemoGrants(
  grantStoreUrl: string,
  demo: readonly Omit<Grant, 'id' | 'createdAt' | 'revision'>[],
): Promise<string[]> {
  const client = createGrpcClient(grants.GrantStoreClient, grantStoreUrl);
  try {
    const ids: string[] = [];
    for (const g of demo) {
      const proto = grantToProto({ ...g, id: '', createdAt: Date.now() });
      const res = await callUnary(client.createGrant.bind(client), {
        principalId: proto.principalId,
        capabilities: proto.capabilities,
        resourcePatterns: proto.resourcePatterns,
        scopes: proto.scopes,
        expiresAt: undefined,
        argumentConstraints: proto.argumentConstraints,
      });
      if (res.grant) ids.push(res.grant.id);
    }
    return ids;
  } finally {
    client.close();
  }
}
