/**
 * No entry has this id. No ReasonCode means "no such record", so each front door maps this
 * type itself: HTTP 404 `NOT_FOUND`, gRPC NOT_FOUND.
 */
export class EntryNotFoundError extends Error {
  override readonly name = 'EntryNotFoundError';
  constructor(readonly id: string) {
    super(`audit entry ${id} not found`);
  }
}

/**
 * The caller is authenticated but is not an operator (an agent never reads the audit). No
 * ReasonCode fits an access-control refusal of the audit itself: HTTP 403 `FORBIDDEN`, gRPC
 * PERMISSION_DENIED.
 */
export class OperatorRequiredError extends Error {
  override readonly name = 'OperatorRequiredError';
  constructor(kind: string) {
    super(`reading the audit needs an operator principal; this token is for a ${kind}`);
  }
}
