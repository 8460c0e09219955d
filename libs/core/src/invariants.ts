/** The eight invariants HCP enforces; each check in libs/policy names the one it serves. */
export const INVARIANTS = {
  I1: 'metadata non-authority',
  I2: 'grant-backed approval',
  I3: 'canonical resources',
  I4: 'principal binding',
  I5: 'scoped capability invocation',
  I6: 'source-and-target data-flow authorization',
  I7: 'deny-path audit',
  I8: 'explicit protocol state',
} as const;

/** Identifier of one invariant, `I1` to `I8`. */
export type InvariantId = keyof typeof INVARIANTS;
