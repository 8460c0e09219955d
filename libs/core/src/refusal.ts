import { newId } from './ids';
import type { InvariantId } from './invariants';
import type { ReasonCode } from './reason-codes';
import type { Decision, EpochMillis, NearestGrant } from './types';

/**
 * The engine's checks and the invariant each one serves. A denial made by one of these checks
 * names that invariant; a denial made anywhere else names the invariant of its reason.
 */
export const CHECK_INVARIANT = {
  audit_path: 'I7',
  principal_binding: 'I4',
  protocol_state: 'I8',
  metadata_authority: 'I1',
  canonical_resource: 'I3',
  scoped_grant: 'I5',
  approval: 'I2',
  data_flow: 'I6',
} as const satisfies Readonly<Record<string, InvariantId>>;

/** Name of one engine check, in docs/policy.md's order. */
export type EngineCheck = keyof typeof CHECK_INVARIANT;

/**
 * The one reason → invariant table. `null` marks reasons that are not a breach of an invariant
 * but a failure to decide or to run (policy or provider away, malformed input, a too large
 * payload): those denials name no invariant unless an engine check made them.
 */
export const REASON_INVARIANT: Readonly<
  Record<Exclude<ReasonCode, 'ALLOWED'>, InvariantId | null>
> = {
  PRINCIPAL_UNAUTHENTICATED: 'I4',
  SESSION_NOT_INITIALIZED: 'I8',
  PROTOCOL_VERSION_UNSUPPORTED: 'I8',
  PROTOCOL_VERSION_MISMATCH: 'I8',
  SESSION_UNKNOWN: 'I8',
  SESSION_EXPIRED: 'I8',
  SESSION_FOREIGN: 'I4',
  CAPABILITY_UNKNOWN: 'I1',
  TOOL_DEFINITION_CHANGED: 'I1',
  NO_MATCHING_GRANT: 'I5',
  SCOPE_MISSING: 'I5',
  RESOURCE_DENIED: 'I3',
  RESOURCE_UNRESOLVABLE: 'I3',
  APPROVAL_REQUIRED: 'I2',
  APPROVAL_MISMATCH: 'I2',
  APPROVAL_EXPIRED: 'I2',
  APPROVAL_CONSUMED: 'I2',
  HANDLE_NOT_OWNED: 'I4',
  HANDLE_EXPIRED: 'I4',
  PIPE_TARGET_DENIED: 'I6',
  POLICY_UNAVAILABLE: null,
  AUDIT_UNAVAILABLE: 'I7',
  INPUT_INVALID: null,
  PAYLOAD_TOO_LARGE: null,
  ARGUMENT_NOT_GRANTED: 'I5',
  PROVIDER_UNAVAILABLE: null,
  VAULT_UNAVAILABLE: null,
};

/** A reason a denial can carry (every code but ALLOWED). */
export type DenialReason = Exclude<ReasonCode, 'ALLOWED'>;

/** The invariant a denial names: its engine check's, else its reason's; undefined when neither names one. */
export function invariantOf(reason: DenialReason, check?: string): InvariantId | undefined {
  if (check !== undefined && Object.prototype.hasOwnProperty.call(CHECK_INVARIANT, check)) {
    return CHECK_INVARIANT[check as EngineCheck];
  }
  return REASON_INVARIANT[reason] ?? undefined;
}

/** What one denial is made of; everything else (id, invariant) the factory derives. */
export interface DenialSpec {
  readonly reason: DenialReason;
  /** The check that refused: an engine check, or the place outside the engine (`input_bounds`, `vault.peek`). */
  readonly check: string;
  readonly explanation: string;
  readonly decidedAt: EpochMillis;
  /** The decision id; a fresh `dec_` id when absent (the edge passes its own when the PDP is away). */
  readonly id?: string;
  readonly ablations?: readonly string[];
  readonly nearestGrant?: NearestGrant;
  readonly targetReason?: ReasonCode;
  /** For a refusal after an allow (the invocation failed): the grant the allow matched. */
  readonly matchedGrantId?: string;
}

const NO_ABLATIONS: readonly string[] = Object.freeze([]);

/**
 * The one place a denial is constructed (I7 by construction: the refusal path records what this
 * returns). A spec test counts the constructions in the source tree and expects exactly this one.
 */
export function denial(spec: DenialSpec): Decision {
  // Filled by assignment rather than spreads: the engine's every denial passes through here.
  const d: { -readonly [K in keyof Decision]: Decision[K] } = {
    id: spec.id ?? newId('dec'),
    outcome: 'deny',
    reason: spec.reason,
    check: spec.check,
    explanation: spec.explanation,
    decidedAt: spec.decidedAt,
    ablations: spec.ablations ?? NO_ABLATIONS,
  };
  const invariant = invariantOf(spec.reason, spec.check);
  if (invariant !== undefined) d.invariant = invariant;
  if (spec.nearestGrant !== undefined) d.nearestGrant = spec.nearestGrant;
  if (spec.targetReason !== undefined) d.targetReason = spec.targetReason;
  if (spec.matchedGrantId !== undefined) d.matchedGrantId = spec.matchedGrantId;
  return d;
}
