import type { Grant } from '@hcp/core';
import { callUnary, createGrpcClient } from '@hcp/platform';
import { capabilityToProto, grantToProto, grants } from '@hcp/proto';
import { CAPABILITIES, GRANTS } from '@hcp/policy/testing';

/**
 * Loads the fixture world (five tools, alice's and bob's grants) into a
 * grant-store through its public gRPC API, so a fresh embedded stack has
 * something to decide on. Returns the ids grant-store assigned.
 */
export async function seedDemo(
  grantStoreUrl: string,
): Promise<{ capabilities: number; grants: string[] }> {
  const client = createGrpcClient(grants.GrantStoreClient, grantStoreUrl);
  try {
    for (const c of CAPABILITIES) {
      await callUnary(client.putCapability.bind(client), { capability: capabilityToProto(c) });
    }
    const ids: string[] = [];
    const now = Date.now();
    for (const g of GRANTS) {
      // Fixture grants carry fixed past times; live ones are re-dated, revoked/expired ones skipped.
      if (g.revokedAt !== undefined || g.expiresAt !== undefined) continue;
      const proto = grantToProto({ ...g, createdAt: now });
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
    return { capabilities: CAPABILITIES.length, grants: ids };
  } finally {
    client.close();
  }
}

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
