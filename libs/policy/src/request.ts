import type {
  Approval,
  Capability,
  EndpointFamily,
  EpochMillis,
  Grant,
  HandleRecord,
  Principal,
  ResourceFacts,
  SessionFacts,
} from '@hcp/core';

/** The call being decided: which capability, on which canonical resource, with which arguments. */
export interface CallFacts {
  readonly capabilityId: string;
  /** Digest of the tool definition the provider currently advertises (I1). */
  readonly observedDefinitionDigest?: string;
  /** The canonicaliser's verdict on the resource argument, when the capability declares one (I3). */
  readonly resource?: ResourceFacts;
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

/** A bounded preview of a handle's data. */
export interface PeekRequest extends RequestEnvelope {
  readonly handleId: string;
  readonly handle?: HandleRecord;
}

/** What the engine decides against: the principal's grants and the capability manifest. */
export interface PolicyContext {
  /** The grants of the requesting principal (others are ignored even if present). */
  readonly grants: readonly Grant[];
  readonly capabilities: ReadonlyMap<string, Capability>;
}

/** Result of one check in an explanation trace. */
export type CheckResult = 'pass' | 'fail' | 'skipped' | 'disabled';
