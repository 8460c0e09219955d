import { newId, type Decision, type EndpointFamily } from '@hcp/core';
import { traceIdOf, type AuditPublisher } from '@hcp/platform';
import type { RefusalSubject } from '@hcp/policy';

/**
 * What the vault needs of the audit publisher (Contract 1): record an entry,
 * and know when the buffer is full so it can refuse before releasing data (I7).
 */
export type VaultAuditPublisher = Pick<AuditPublisher, 'record' | 'available'>;

/** The vault operations that leave an audit entry. */
export type VaultOperation = 'peek' | 'resolve_for_pipe' | 'delete' | 'expire_now';

/**
 * Why the vault refused, finer than the reason code and for operators only:
 * the caller sees one HANDLE_NOT_OWNED for the first three, the audit tells
 * them apart (a stream of `handle_unknown` is somebody probing ids).
 */
export type DenialRule =
  | 'handle_unknown'
  | 'owner_mismatch'
  | 'payload_unauthenticated'
  | 'expired'
  | 'input_invalid'
  | 'operator_missing';

/** The facts of one vault decision. */
export interface VaultAuditFacts {
  readonly operation: VaultOperation;
  readonly time: number;
  readonly principalId?: string;
  readonly handleId?: string;
  /** ResolveForPipe's DecidePipe decision id; empty for the vault's own checks. */
  readonly decisionId?: string;
  readonly rule?: DenialRule;
  /** ExpireNow's operator reason; goes into `rule` (the entry has no other free-text field). */
  readonly note?: string;
}

/** Families per operation: a pipe read is handle/pipe; previews and lifecycle actions are handle/peek. */
export function familyOf(operation: VaultOperation): EndpointFamily {
  return operation === 'resolve_for_pipe' ? 'handle/pipe' : 'handle/peek';
}

/** The check a vault decision names: the operation, because handle/peek carries previews and lifecycle actions alike. */
export function vaultCheck(operation: VaultOperation): string {
  return `vault.${operation}`;
}

/**
 * Who and what a vault entry is about, in the refusal path's terms: the caller by id (the vault
 * knows no more of it), the handle, and the denial rule and operator note as the entry's rule.
 */
export function vaultSubject(facts: VaultAuditFacts): RefusalSubject {
  const rule = [facts.rule, facts.note].filter((s) => s !== undefined && s !== '').join(': ');
  const traceId = traceIdOf();
  return {
    endpointFamily: familyOf(facts.operation),
    handleIds: facts.handleId === undefined ? [] : [facts.handleId],
    ...(facts.principalId === undefined ? {} : { principalId: facts.principalId }),
    ...(rule === '' ? {} : { rule }),
    ...(traceId === undefined ? {} : { traceId }),
  };
}

/**
 * The allow a vault operation is recorded under: ResolveForPipe's under the DecidePipe decision
 * that authorised it, the vault's own checks under a fresh decision id.
 */
export function vaultAllow(facts: VaultAuditFacts): Decision {
  return {
    id: facts.decisionId ?? newId('dec'),
    outcome: 'allow',
    reason: 'ALLOWED',
    check: vaultCheck(facts.operation),
    explanation: `allow ${vaultCheck(facts.operation)}`,
    decidedAt: facts.time,
    ablations: [],
  };
}
