import type { Approval, Capability, Grant } from '@hcp/core';
import type { GrantSource, ManifestSnapshot, PrincipalSnapshot } from '../grant-source';

/**
 * An in-memory GrantSource for unit tests: grants, manifest and approvals held in
 * maps, a revision per principal, and switches to fail or stall fetches so the
 * cache's failure paths can be driven deterministically.
 */
export class MemoryGrantSource implements GrantSource {
  grants: Grant[] = [];
  capabilities: Capability[] = [];
  approvals = new Map<string, Approval>();
  revisions = new Map<string, number>();
  manifestRevision = 1;
  failing = false;
  calls = { principal: 0, manifest: 0, approval: 0 };
  /** When set, principal fetches wait for this promise before reading (to interleave writes). */
  gate: Promise<void> | undefined;

  constructor(grants: readonly Grant[] = [], capabilities: readonly Capability[] = []) {
    this.grants = [...grants];
    this.capabilities = [...capabilities];
  }

  async principal(principalId: string): Promise<PrincipalSnapshot> {
    this.calls.principal++;
    const revision = this.revisions.get(principalId) ?? 0;
    const snapshot = this.grants.filter(
      (g) => g.principalId === principalId && g.revokedAt === undefined,
    );
    // The snapshot is read before the gate, like a database read that completes before the write.
    if (this.gate !== undefined) await this.gate;
    if (this.failing) throw new Error('grant-store unreachable');
    return { grants: snapshot, revision };
  }

  manifest(): Promise<ManifestSnapshot> {
    this.calls.manifest++;
    if (this.failing) return Promise.reject(new Error('grant-store unreachable'));
    return Promise.resolve({
      capabilities: new Map(this.capabilities.map((c) => [c.id, c])),
      revision: this.manifestRevision,
    });
  }

  approval(approvalId: string): Promise<Approval | undefined> {
    this.calls.approval++;
    if (this.failing) return Promise.reject(new Error('grant-store unreachable'));
    return Promise.resolve(this.approvals.get(approvalId));
  }

  /** Revokes a grant and bumps its principal's revision, as grant-store would; returns the new revision. */
  revoke(grantId: string, at: number): number {
    const g = this.grants.find((x) => x.id === grantId);
    if (g === undefined) throw new Error(`no grant ${grantId}`);
    this.grants = this.grants.map((x) => (x.id === grantId ? { ...x, revokedAt: at } : x));
    const rev = (this.revisions.get(g.principalId) ?? 0) + 1;
    this.revisions.set(g.principalId, rev);
    return rev;
  }
}
