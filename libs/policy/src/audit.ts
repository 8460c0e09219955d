import {
  newId,
  resourceLabel,
  type AuditEntry,
  type Decision,
  type EndpointFamily,
  type ResourceFacts,
} from '@hcp/core';
import type { CallFacts, RequestEnvelope } from './request';

/** What the audit needs beyond the decision: the call, and any handles involved. */
export interface AuditSubject {
  readonly endpointFamily: EndpointFamily;
  readonly call?: CallFacts;
  /** Without a full call (a refusal before the facts exist): the capability it named. */
  readonly capabilityId?: string;
  /** Without a full call: the resource, raw and (if known) canonical. */
  readonly resource?: ResourceFacts;
  readonly handleIds?: readonly string[];
  readonly approvalId?: string;
  /** Why, finer than the reason, for operators (the vault's denial rule, the egress rule); wins over the resource's rule. */
  readonly rule?: string;
  /** The caller's id when no authenticated Principal is at hand (the vault knows only the id). */
  readonly principalId?: string;
}

/**
 * Builds the audit entry for a decision (I7). Every decision, allow or deny,
 * gets one; the entry carries the raw and the canonical resource so a reader
 * sees what the caller asked for and what policy actually decided on.
 */
export function auditEntryFor(
  req: RequestEnvelope,
  decision: Decision,
  subject: AuditSubject,
): AuditEntry {
  const resources = subject.call?.resources;
  let raw: string | undefined;
  let canonical: string | undefined;
  let resourceRule: string | undefined;
  if (resources !== undefined && resources.length > 0) {
    const only = resources.length === 1 ? resources[0] : undefined;
    if (only !== undefined) {
      raw = resourceRaw(only.facts);
      canonical = resourceCanonical(only.facts);
    } else {
      // Several resources (move_file's source and destination, read_multiple_files' paths): one
      // `argument: value` line each, in declaration order, so the entry shows all of them.
      raw = resources.map((r) => `${resourceLabel(r)}: ${resourceRaw(r.facts) ?? ''}`).join('\n');
      canonical = resources
        .map((r) => `${resourceLabel(r)}: ${resourceCanonical(r.facts) ?? ''}`)
        .join('\n');
    }
    for (const r of resources) {
      if (r.facts.status !== 'resolved') {
        resourceRule = r.facts.rule;
        break;
      }
    }
  } else if (subject.resource !== undefined) {
    raw = resourceRaw(subject.resource);
    canonical = resourceCanonical(subject.resource);
    resourceRule = subject.resource.status !== 'resolved' ? subject.resource.rule : undefined;
  }
  const rule = subject.rule ?? resourceRule;
  const approvalId = subject.approvalId ?? subject.call?.approval?.id;
  // Filled by assignment rather than conditional spreads: this runs once per decision.
  const entry: { -readonly [K in keyof AuditEntry]: AuditEntry[K] } = {
    id: newId('aud'),
    time: decision.decidedAt,
    decisionId: decision.id,
    endpointFamily: subject.endpointFamily,
    outcome: decision.outcome,
    reason: decision.reason,
    check: decision.check,
    handleIds: subject.handleIds ?? [],
  };
  const principalId = req.principal?.id ?? subject.principalId;
  if (principalId !== undefined) entry.principalId = principalId;
  const capabilityId = subject.call?.capabilityId ?? subject.capabilityId;
  if (capabilityId !== undefined && capabilityId !== '') entry.capabilityId = capabilityId;
  if (raw !== undefined) entry.resourceRaw = raw;
  if (canonical !== undefined) entry.resourceCanonical = canonical;
  if (decision.invariant !== undefined) entry.invariant = decision.invariant;
  if (decision.matchedGrantId !== undefined) entry.matchedGrantId = decision.matchedGrantId;
  if (decision.nearestGrant !== undefined) {
    entry.missingGrant = `${decision.nearestGrant.grantId}: ${decision.nearestGrant.mismatch}`;
  }
  if (rule !== undefined) entry.rule = rule;
  if (approvalId !== undefined) entry.approvalId = approvalId;
  if (req.traceId !== undefined) entry.traceId = req.traceId;
  return entry;
}

function resourceRaw(facts: ResourceFacts | undefined): string | undefined {
  if (facts === undefined) return undefined;
  return facts.status === 'resolved' ? facts.resource.raw : facts.raw;
}

function resourceCanonical(facts: ResourceFacts | undefined): string | undefined {
  if (facts === undefined) return undefined;
  return facts.status === 'resolved' ? facts.resource.canonical : facts.canonical;
}
