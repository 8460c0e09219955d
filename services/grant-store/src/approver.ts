import type { Metadata } from '@grpc/grpc-js';
import { HcpError, type Principal, type PrincipalKind } from '@hcp/core';
import { bearerToken, type TokenVerifier } from '@hcp/platform';
import { ApproverRequiredError } from './errors';

/**
 * Metadata key carrying the acting operator's principal id when grant-store runs
 * WITHOUT a token verifier. Development only: any caller able to reach the port
 * can claim any id. With a verifier this key is ignored.
 */
export const OPERATOR_METADATA_KEY = 'hcp-principal-id';

/** Metadata key of the bearer token (`authorization: Bearer <jwt>`), as gRPC clients send it. */
export const AUTHORIZATION_METADATA_KEY = 'authorization';

/**
 * Principal kinds that may decide and list approvals. Only a human operator: a service
 * (e.g. the edge) deciding approvals would let the enforcement path approve its own calls,
 * and an agent is the party the approval constrains (I2).
 */
export const APPROVER_KINDS: readonly PrincipalKind[] = ['operator'];

/** Who may decide approvals, and how grant-store learns it: a verified token, or (dev) trusted metadata. */
export type ApproverAuthentication =
  | { readonly mode: 'token'; readonly verifier: TokenVerifier }
  | { readonly mode: 'trusted-metadata' };

/**
 * The acting approver of an operator RPC. With a verifier: the `sub` of a verified bearer
 * token whose kind is an approver kind. Without one: the id in `hcp-principal-id` (dev only).
 */
export async function approverOf(
  auth: ApproverAuthentication,
  metadata: Metadata | undefined,
  action: string,
): Promise<Principal> {
  if (auth.mode === 'trusted-metadata') {
    const value = metadata?.get(OPERATOR_METADATA_KEY)[0];
    if (typeof value !== 'string' || value === '')
      throw new HcpError(
        'PRINCIPAL_UNAUTHENTICATED',
        `${action} needs the operator's principal id in metadata ${OPERATOR_METADATA_KEY}`,
      );
    return { id: value, kind: 'operator' };
  }
  const header = metadata?.get(AUTHORIZATION_METADATA_KEY)[0];
  const principal = await auth.verifier.verify(
    bearerToken(typeof header === 'string' ? header : undefined),
  );
  if (!APPROVER_KINDS.includes(principal.kind))
    throw new ApproverRequiredError(principal.kind, action, principal.id);
  return principal;
}
