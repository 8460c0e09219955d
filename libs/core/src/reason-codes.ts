/**
 * The closed set of decision reason codes. Mirrors `hcp.core.v1.ReasonCode` in
 * proto/hcp/core/v1/core.proto (a spec test keeps the two equal); the numeric
 * value is the proto enum number, so a code survives every wire hop unchanged.
 */
export const REASON_CODE_NUMBERS = {
  ALLOWED: 1,
  PRINCIPAL_UNAUTHENTICATED: 2,
  SESSION_NOT_INITIALIZED: 3,
  PROTOCOL_VERSION_UNSUPPORTED: 4,
  PROTOCOL_VERSION_MISMATCH: 5,
  SESSION_UNKNOWN: 6,
  SESSION_EXPIRED: 7,
  SESSION_FOREIGN: 8,
  CAPABILITY_UNKNOWN: 9,
  TOOL_DEFINITION_CHANGED: 10,
  NO_MATCHING_GRANT: 11,
  SCOPE_MISSING: 12,
  RESOURCE_DENIED: 13,
  RESOURCE_UNRESOLVABLE: 14,
  APPROVAL_REQUIRED: 15,
  APPROVAL_MISMATCH: 16,
  APPROVAL_EXPIRED: 17,
  APPROVAL_CONSUMED: 18,
  HANDLE_NOT_OWNED: 19,
  HANDLE_EXPIRED: 20,
  PIPE_TARGET_DENIED: 21,
  POLICY_UNAVAILABLE: 22,
  AUDIT_UNAVAILABLE: 23,
  INPUT_INVALID: 24,
  PAYLOAD_TOO_LARGE: 25,
  ARGUMENT_NOT_GRANTED: 26,
  PROVIDER_UNAVAILABLE: 27,
  VAULT_UNAVAILABLE: 28,
} as const;

/** A reason code as the TypeScript side names it (the proto name without its `REASON_CODE_` prefix). */
export type ReasonCode = keyof typeof REASON_CODE_NUMBERS;

/** Every reason code, in proto number order; used for exhaustive tests and docs. */
export const REASON_CODES: readonly ReasonCode[] = (
  Object.keys(REASON_CODE_NUMBERS) as ReasonCode[]
).sort((a, b) => REASON_CODE_NUMBERS[a] - REASON_CODE_NUMBERS[b]);

const BY_NUMBER = new Map<number, ReasonCode>(REASON_CODES.map((c) => [REASON_CODE_NUMBERS[c], c]));

/** True when `value` is one of the closed reason codes (for input arriving as text). */
export function isReasonCode(value: unknown): value is ReasonCode {
  return (
    typeof value === 'string' && Object.prototype.hasOwnProperty.call(REASON_CODE_NUMBERS, value)
  );
}

/** Maps a proto enum number back to the code; undefined for 0 (UNSPECIFIED) or an unknown number. */
export function reasonCodeFromNumber(n: number): ReasonCode | undefined {
  return BY_NUMBER.get(n);
}

/** One line per code for operators: what it means and who can fix it. */
export const REASON_CODE_DESCRIPTIONS: Readonly<Record<ReasonCode, string>> = {
  ALLOWED: 'Every check passed; the call may execute.',
  PRINCIPAL_UNAUTHENTICATED: 'The request carried no valid credential, so no principal is known.',
  SESSION_NOT_INITIALIZED: 'A request arrived before the MCP initialize handshake completed.',
  PROTOCOL_VERSION_UNSUPPORTED:
    'The client asked for an MCP protocol version this runtime does not support.',
  PROTOCOL_VERSION_MISMATCH:
    'The protocol version header disagrees with the version negotiated for the session.',
  SESSION_UNKNOWN: 'The session id is not known (never issued, or ended).',
  SESSION_EXPIRED: 'The session existed but has expired.',
  SESSION_FOREIGN: 'The session belongs to another principal.',
  CAPABILITY_UNKNOWN:
    'The tool has no entry in the capability manifest; unlisted tools are not callable.',
  TOOL_DEFINITION_CHANGED:
    'The tool definition differs from the pinned digest; an operator must re-approve it.',
  NO_MATCHING_GRANT: 'No grant of the principal covers this capability and resource.',
  SCOPE_MISSING:
    'A grant covers the capability and resource but lacks a scope the capability requires.',
  RESOURCE_DENIED:
    'The canonical resource is outside every allowed root or address range, or hit a deny rule.',
  RESOURCE_UNRESOLVABLE:
    'The resource could not be resolved to a canonical form (dangling link, missing parent, no address).',
  APPROVAL_REQUIRED:
    'The capability needs an approval bound to this exact call and none was presented.',
  APPROVAL_MISMATCH:
    'The approval presented is bound to another principal, capability, resource or arguments.',
  APPROVAL_EXPIRED: 'The approval presented has expired.',
  APPROVAL_CONSUMED: 'The approval presented was already used once; approvals are single-use.',
  HANDLE_NOT_OWNED: 'The handle does not exist or belongs to another principal.',
  HANDLE_EXPIRED: 'The handle has expired.',
  PIPE_TARGET_DENIED:
    'The source handle is owned, but the target capability is not allowed for this data.',
  POLICY_UNAVAILABLE: 'The decision point could not obtain fresh policy; it fails closed.',
  AUDIT_UNAVAILABLE:
    'The audit path cannot record the decision; work is refused rather than run unaudited.',
  INPUT_INVALID: 'The request is malformed or exceeds a bound.',
  PAYLOAD_TOO_LARGE: 'The payload exceeds the per-handle or per-principal size limit.',
  ARGUMENT_NOT_GRANTED:
    "A grant covers capability, resource and scopes, but the call's arguments break one of its argument constraints.",
  PROVIDER_UNAVAILABLE:
    'The upstream MCP server failed, timed out or crashed after the call was allowed.',
  VAULT_UNAVAILABLE: 'The handle vault could not be reached to store, read or describe a handle.',
};
