import { canonicalJson, sha256Hex, type AuditEntry } from '@hcp/core';

/** prev_hash of the first entry: 64 zeros (there is no previous entry). */
export const GENESIS_HASH = '0'.repeat(64);

/** An entry as stored: its place in the chain is known. */
export type ChainedEntry = AuditEntry & {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
};

/**
 * The object whose canonical JSON is hashed: every AuditEntry field except seq, prevHash and
 * hash, under its domain (camelCase) name, with absent optional fields left out (never null),
 * `time` as epoch milliseconds. Listed field by field so that nothing else (ingest metadata,
 * a stray property) can ever enter the hash. README.md documents the same list.
 */
export function hashedForm(e: AuditEntry): Record<string, unknown> {
  const form: Record<string, unknown> = {
    id: e.id,
    time: e.time,
    decisionId: e.decisionId,
    endpointFamily: e.endpointFamily,
    outcome: e.outcome,
    reason: e.reason,
    handleIds: [...e.handleIds],
  };
  const optional = {
    principalId: e.principalId,
    capabilityId: e.capabilityId,
    resourceRaw: e.resourceRaw,
    resourceCanonical: e.resourceCanonical,
    invariant: e.invariant,
    check: e.check,
    matchedGrantId: e.matchedGrantId,
    missingGrant: e.missingGrant,
    rule: e.rule,
    approvalId: e.approvalId,
    traceId: e.traceId,
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) form[k] = v;
  return form;
}

/** hash = lower-hex SHA-256 over the UTF-8 text `prevHash || canonicalJson(hashedForm(entry))`. */
export function entryHash(prevHash: string, entry: AuditEntry): string {
  return sha256Hex(prevHash + canonicalJson(hashedForm(entry)));
}

/** What broke first in a chain, in the order verify checks it. */
export type BreakReason = 'seq_gap' | 'prev_hash_mismatch' | 'hash_mismatch';

/** The first broken link verify found. */
export interface BrokenLink {
  readonly seq: number;
  /** Empty when the entry at this seq is missing (a gap or a truncated tail). */
  readonly id: string;
  readonly reason: BreakReason;
  /**
   * What the chain requires here: the recomputed hash (hash_mismatch), the previous entry's hash
   * (prev_hash_mismatch), or for a missing entry the hash of the last intact one (seq_gap).
   */
  readonly expected: string;
  /** What is stored there; empty when the entry is missing. */
  readonly stored: string;
}

/**
 * Checks one stored entry against its predecessor (seq and hash of the entry before it).
 * Order: a missing seq first, then the link to the predecessor, then the entry's own hash.
 */
export function checkLink(
  previous: { readonly seq: number; readonly hash: string },
  e: ChainedEntry,
): BrokenLink | undefined {
  if (e.seq !== previous.seq + 1)
    return {
      seq: previous.seq + 1,
      id: '',
      reason: 'seq_gap',
      expected: previous.hash,
      stored: '',
    };
  if (e.prevHash !== previous.hash)
    return {
      seq: e.seq,
      id: e.id,
      reason: 'prev_hash_mismatch',
      expected: previous.hash,
      stored: e.prevHash,
    };
  const recomputed = entryHash(e.prevHash, e);
  if (recomputed !== e.hash)
    return { seq: e.seq, id: e.id, reason: 'hash_mismatch', expected: recomputed, stored: e.hash };
  return undefined;
}
