import {
  newId,
  type AuditEntry,
  type EndpointFamily,
  type InvariantId,
  type ReasonCode,
} from '@hcp/core';
import { traceIdOf, type AuditPublisher } from '@hcp/platform';

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
  readonly outcome: 'allow' | 'deny';
  readonly reason: ReasonCode;
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

function invariantOf(reason: ReasonCode): InvariantId | undefined {
  return reason === 'HANDLE_NOT_OWNED' || reason === 'HANDLE_EXPIRED' ? 'I4' : undefined;
}

/**
 * The audit entry for a vault decision. `check` names the operation
 * (`vault.peek`, `vault.resolve_for_pipe`, `vault.delete`, `vault.expire_now`)
 * because handle/peek carries previews and lifecycle actions alike.
 */
export function vaultAuditEntry(facts: VaultAuditFacts): AuditEntry {
  const entry: { -readonly [K in keyof AuditEntry]: AuditEntry[K] } = {
    id: newId('aud'),
    time: facts.time,
    decisionId: facts.decisionId ?? '',
    endpointFamily: familyOf(facts.operation),
    outcome: facts.outcome,
    reason: facts.reason,
    check: `vault.${facts.operation}`,
    handleIds: facts.handleId === undefined ? [] : [facts.handleId],
  };
  if (facts.principalId !== undefined) entry.principalId = facts.principalId;
  const invariant = facts.outcome === 'deny' ? invariantOf(facts.reason) : undefined;
  if (invariant !== undefined) entry.invariant = invariant;
  const rule = [facts.rule, facts.note].filter((s) => s !== undefined && s !== '').join(': ');
  if (rule !== '') entry.rule = rule;
  const traceId = traceIdOf();
  if (traceId !== undefined) entry.traceId = traceId;
  return entry;
}
