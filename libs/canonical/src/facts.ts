import type { CanonicalResource, ResourceFacts, ResourceKind } from '@hcp/core';

/** The three ways a canonicaliser refuses; the engine maps each to its own reason code. */
export type RefusalStatus = 'denied' | 'unresolvable' | 'invalid';

/** How much of an over-long raw value a refusal keeps, so a hostile input cannot flood the audit. */
export const MAX_RAW_IN_FACTS = 4096;

/** Builds the one success shape, so every canonicaliser reports a resolved resource identically. */
export function resolvedFacts(resource: CanonicalResource): ResourceFacts {
  return { status: 'resolved', resource };
}

/** Builds a refusal carrying its stable rule name; the only way canonicalisers say no. */
export function refusedFacts(
  status: RefusalStatus,
  kind: ResourceKind,
  raw: string,
  rule: string,
  detail: string,
  canonical?: string,
): ResourceFacts {
  const kept = raw.length > MAX_RAW_IN_FACTS ? raw.slice(0, MAX_RAW_IN_FACTS) : raw;
  return canonical === undefined
    ? { status, kind, raw: kept, rule, detail }
    : { status, kind, raw: kept, rule, detail, canonical };
}

/** True for C0 controls (NUL included) and DEL: characters no resource name should carry. */
export function hasControlChar(value: string): boolean {
  for (let i = 0; i < value.length; i += 1) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
