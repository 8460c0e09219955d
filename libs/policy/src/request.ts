import type { Capability, Grant, HandleRecord, RequestEnvelope } from '@hcp/core';

// The request types are libs/core's, so the wire converters (libs/proto) build them directly.
export type { CallFacts, DecideRequest, PipeRequest, RequestEnvelope } from '@hcp/core';

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
