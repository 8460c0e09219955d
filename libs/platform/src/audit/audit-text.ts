import type { AuditEntry } from '@hcp/core';

/**
 * The one escape for audit text that a carrier cannot hold as it is: PostgreSQL text cannot hold
 * U+0000, and neither UTF-8 (PostgreSQL, the proto3 `string` on the audit stream) can hold a lone
 * UTF-16 surrogate (encoders silently write U+FFFD). The escaped form is the body of a JSON string
 * literal as `JSON.stringify` writes it (RFC 8259 escapes; since ES2019 a lone surrogate becomes
 * `\udXXX`): NUL-free, well-formed, injective, and read back by any JSON parser.
 */
export function escapeAuditText(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/**
 * The original of an escaped string. Text that is not a valid escape (edited by hand) is returned
 * as it is, so a hash over the original values no longer recomputes and verify names it.
 */
export function unescapeAuditText(escaped: string): string {
  try {
    const value: unknown = JSON.parse(`"${escaped}"`);
    return typeof value === 'string' ? value : escaped;
  } catch {
    return escaped;
  }
}

/** A lone surrogate: in a `u` regex a paired one is an astral code point, an unpaired one is Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/** True when UTF-8 cannot carry the string: it has a lone surrogate. */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** Every string of an entry, for deciding whether it needs escaping. */
export function auditEntryTexts(e: AuditEntry): string[] {
  const all = [e.id, e.decisionId, ...e.handleIds];
  for (const v of [
    e.principalId,
    e.capabilityId,
    e.resourceRaw,
    e.resourceCanonical,
    e.check,
    e.matchedGrantId,
    e.missingGrant,
    e.rule,
    e.approvalId,
    e.traceId,
  ])
    if (v !== undefined) all.push(v);
  return all;
}

/**
 * The entry with `f` applied to each free-text field. Endpoint family, outcome, reason and
 * invariant are closed sets (validated, never escaped), and time is a number.
 */
export function mapAuditEntryText(e: AuditEntry, f: (s: string) => string): AuditEntry {
  const out: { -readonly [K in keyof AuditEntry]: AuditEntry[K] } = {
    ...e,
    id: f(e.id),
    decisionId: f(e.decisionId),
    handleIds: e.handleIds.map(f),
  };
  for (const k of [
    'principalId',
    'capabilityId',
    'resourceRaw',
    'resourceCanonical',
    'check',
    'matchedGrantId',
    'missingGrant',
    'rule',
    'approvalId',
    'traceId',
  ] as const) {
    const v = e[k];
    if (v !== undefined) out[k] = f(v);
  }
  return out;
}
