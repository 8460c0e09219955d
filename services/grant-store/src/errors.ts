import type { ReasonCode } from '@hcp/core';

/** What a grant-store id names; used in NOT_FOUND messages. */
export type StoredEntity = 'grant' | 'capability' | 'approval';

/**
 * An unknown id. The platform exception filter maps only HcpError and no
 * reason code means "no such record", so this travels as gRPC NOT_FOUND
 * through GrantStoreExceptionFilter (reason CAPABILITY_UNKNOWN for a capability).
 */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  constructor(
    readonly entity: StoredEntity,
    readonly id: string,
    /** The decision id of the refusal's audit entry, once the refusal path recorded it. */
    readonly decisionId?: string,
  ) {
    super(`${entity} ${id} not found`);
  }

  /** The same refusal, naming the audit entry that records it. */
  recordedAs(decisionId: string): NotFoundError {
    return new NotFoundError(this.entity, this.id, decisionId);
  }

  /** The reason carried in the ErrorDetail, when one fits. */
  get reason(): ReasonCode | undefined {
    return this.entity === 'capability' ? 'CAPABILITY_UNKNOWN' : undefined;
  }
}

/**
 * A well-formed request the record's state does not allow (an approval that is
 * consumed, expired, undecided, bound to another call, or already decided). The
 * proto fixes FAILED_PRECONDITION for these, whereas the platform's reason ->
 * status table sends APPROVAL_REQUIRED/MISMATCH as PERMISSION_DENIED; this type
 * keeps grant-store on its contract without changing the shared table.
 */
export class FailedPreconditionError extends Error {
  override readonly name = 'FailedPreconditionError';
  constructor(
    message: string,
    /** The reason carried in the ErrorDetail; undefined when no code fits (e.g. already decided). */
    readonly reason?: ReasonCode,
    /** The decision id of the refusal's audit entry, once the refusal path recorded it. */
    readonly decisionId?: string,
  ) {
    super(message);
  }

  /**
   * The same refusal, naming the audit entry that records it and, when it had none, the reason
   * that entry records (the caller reads the decision id only beside a reason).
   */
  recordedAs(decisionId: string, reason: ReasonCode): FailedPreconditionError {
    return new FailedPreconditionError(this.message, this.reason ?? reason, decisionId);
  }
}

/**
 * The caller authenticated, but not as an approver (an agent or service token on an operator
 * RPC). gRPC says PERMISSION_DENIED for an identified caller without the right; the reason is
 * PRINCIPAL_UNAUTHENTICATED because the closed enum has no role code and, for the approver
 * role, no approver principal is known: the remedy is another credential (an operator token).
 */
export class ApproverRequiredError extends Error {
  override readonly name = 'ApproverRequiredError';
  readonly reason: ReasonCode = 'PRINCIPAL_UNAUTHENTICATED';
  constructor(
    readonly kind: string,
    readonly action: string,
    /** Who presented the token (audited with the refusal). */
    readonly principalId?: string,
    /** The decision id of the refusal's audit entry, once the refusal path recorded it. */
    readonly decisionId?: string,
  ) {
    super(`${action} needs an operator token; this token is for a principal of kind ${kind}`);
  }

  /** The same refusal, naming the audit entry that records it. */
  recordedAs(decisionId: string): ApproverRequiredError {
    return new ApproverRequiredError(this.kind, this.action, this.principalId, decisionId);
  }
}
