import type * as vault from '../generated/hcp/vault/v1/handle_vault';
import { durationFromProto } from './check';

/**
 * hcp.vault.v1 requests in domain terms. Only the wire-level rules live here (a Duration in
 * range); what an identifier or a label may contain is handle-vault's own check, because the
 * vault audits an invalid request as a refusal.
 */

/** A Put request: who will own the output, what produced it, and for how long. */
export interface PutHandleFacts {
  readonly ownerPrincipalId: string;
  readonly producingCapability: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Undefined: the vault's default TTL. */
  readonly ttlMs?: number;
  readonly payload: Uint8Array;
}

/** A hcp.vault.v1.PutRequest, its TTL in millis. */
export function putRequestFromProto(r: vault.PutRequest): PutHandleFacts {
  const ttlMs = durationFromProto(r.ttl, 'ttl');
  return {
    ownerPrincipalId: r.ownerPrincipalId,
    producingCapability: r.producingCapability,
    labels: r.labels,
    ...(ttlMs !== undefined && { ttlMs }),
    payload: r.payload,
  };
}
