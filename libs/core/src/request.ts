import type {
  Approval,
  ArgumentResource,
  EndpointFamily,
  EpochMillis,
  HandleRecord,
  Principal,
  SessionFacts,
} from './types';

// The engine's request types live here rather than in libs/policy so that libs/proto can
// convert the wire message straight into them: one request type from the edge to the engine.

/** The call being decided: which capability, on which canonical resource, with which arguments. */
export interface CallFacts {
  readonly capabilityId: string;
  /** Digest of the tool definition the provider currently advertises (I1). */
  readonly observedDefinitionDigest?: string;
  /**
   * The canonicaliser's verdict on every resource the call names, one per declared resource
   * argument (one per element of an array argument), in declaration order (I3).
   */
  readonly resources?: readonly ArgumentResource[];
  /** `argumentsDigest(arguments)`: what an approval is bound to (I2). */
  readonly argumentsDigest: string;
  /**
   * The validated top-level arguments, read only by grants' argument constraints (I5); never
   * read as policy. For a pipe, the target's arguments with the piped one as a handle reference.
   * Absent: not provided, and a grant with argument constraints then does not match.
   */
  readonly arguments?: Readonly<Record<string, unknown>>;
  /** The approval presented with the call, already fetched by id (I2). */
  readonly approval?: Approval;
}

/** Facts shared by every request: who asks, in which session, when, and whether the audit can record. */
export interface RequestEnvelope {
  /** Absent when the credential did not authenticate. */
  readonly principal?: Principal;
  readonly session: SessionFacts;
  readonly now: EpochMillis;
  /** False when the audit publisher is over its buffer bound (I7); defaults to true. */
  readonly auditAvailable?: boolean;
  readonly traceId?: string;
}

/** A tools/call decision. */
export interface DecideRequest extends RequestEnvelope {
  readonly call: CallFacts;
  readonly endpointFamily?: EndpointFamily;
}

/** A pipe: data of `source` into an argument of the target call (I6). */
export interface PipeRequest extends RequestEnvelope {
  readonly sourceHandleId: string;
  /** The handle's metadata; absent when no such handle exists. */
  readonly source?: HandleRecord;
  readonly target: CallFacts;
}

/**
 * A call as an enforcement point knows it before asking: the approval only by id (the PDP
 * fetches it, so no caller can present an approval object of its own making).
 */
export type CallRequestFacts = Omit<CallFacts, 'approval'> & { readonly approvalId?: string };

/**
 * The engine's DecideRequest less what only the PDP supplies (its own clock, the fetched
 * approval): what the edge builds, what travels as hcp.policy.v1.DecideRequest, and what the
 * PDP's converter returns.
 */
export type DecideRequestFacts = Omit<DecideRequest, 'now' | 'call'> & {
  readonly call: CallRequestFacts;
};

/** A DecidePipe request as it travels: the source handle by id (with the vault's metadata when known). */
export interface PipeRequestFacts {
  readonly sourceHandleId: string;
  readonly source?: HandleRecord;
  readonly target: DecideRequestFacts;
}
