import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { ArgumentResource } from './types';

/**
 * RFC 8785 (JCS) canonical JSON, through the `canonicalize` library by the
 * RFC's author. Two equal values always give byte-equal text, which is what
 * approval binding and the audit hash chain need.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) {
    throw new TypeError('value has no JSON representation');
  }
  return text;
}

/** Lower-case hex SHA-256 of a UTF-8 string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 over the canonical JSON of a value, prefixed with the algorithm so digests can evolve. */
export function digestOf(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`;
}

/** One canonical resource an approval binds, named by the argument that holds it. */
export interface BoundResource {
  readonly argument: string;
  readonly index: number;
  readonly canonical: string;
}

/**
 * The fields an approval is bound to: this principal, this capability, every canonical resource
 * of the call (source and destination alike), these arguments.
 */
export interface ApprovalBinding {
  readonly principalId: string;
  readonly capabilityId: string;
  readonly canonicalResources: readonly BoundResource[];
  readonly argumentsDigest: string;
}

/**
 * The resources an approval binds, from a call's resource facts: every resolved one, in order.
 * (A call with an unresolved resource is denied before any approval is looked at.)
 */
export function boundResourcesOf(
  resources: readonly ArgumentResource[] | undefined,
): BoundResource[] {
  const bound: BoundResource[] = [];
  for (const r of resources ?? []) {
    if (r.facts.status === 'resolved')
      bound.push({ argument: r.argument, index: r.index, canonical: r.facts.resource.canonical });
  }
  return bound;
}

/** The digest an approval carries; a call whose binding digests differently cannot use it (I2). */
export function approvalBindingDigest(binding: ApprovalBinding): string {
  return digestOf({
    v: 2,
    principal: binding.principalId,
    capability: binding.capabilityId,
    resources: binding.canonicalResources.map((r) => [r.argument, r.index, r.canonical]),
    arguments: binding.argumentsDigest,
  });
}

/** Digest of a tool call's arguments object, independent of key order. */
export function argumentsDigest(args: unknown): string {
  return digestOf(args ?? {});
}
