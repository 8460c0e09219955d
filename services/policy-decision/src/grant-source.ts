import type { Approval, Capability, Grant } from '@hcp/core';

/** A principal's live grants at one revision, as grant-store reported them. */
export interface PrincipalSnapshot {
  readonly grants: readonly Grant[];
  readonly revision: number;
}

/** The capability manifest at one revision. */
export interface ManifestSnapshot {
  readonly capabilities: ReadonlyMap<string, Capability>;
  readonly revision: number;
}

/**
 * Where the PDP reads policy from. The service uses grant-store over gRPC; the
 * cache and its tests depend only on this interface.
 */
export interface GrantSource {
  principal(principalId: string): Promise<PrincipalSnapshot>;
  manifest(): Promise<ManifestSnapshot>;
  /** Undefined when grant-store has no such approval. */
  approval(approvalId: string): Promise<Approval | undefined>;
}
