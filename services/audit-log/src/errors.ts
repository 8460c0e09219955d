/**
 * No entry has this id. No ReasonCode means "no such record": HTTP 404 with reason INPUT_INVALID
 * (the id names nothing), gRPC NOT_FOUND.
 */
export class EntryNotFoundError extends Error {
  override readonly name = 'EntryNotFoundError';
  constructor(readonly id: string) {
    super(`audit entry ${id} not found`);
  }
}

/**
 * The caller is authenticated but is not an operator (an agent never reads the audit): its token
 * lacks the scope reading the audit needs. HTTP 403 with reason SCOPE_MISSING, gRPC
 * PERMISSION_DENIED.
 */
export class OperatorRequiredError extends Error {
  override readonly name = 'OperatorRequiredError';
  constructor(kind: string) {
    super(`reading the audit needs an operator principal; this token is for a ${kind}`);
  }
}

/**
 * The caller's Accept header admits no JSON, the only representation the API has. Answered 406
 * with the reason INPUT_INVALID (the request cannot be served as asked).
 */
export class NotAcceptableError extends Error {
  override readonly name = 'NotAcceptableError';
  constructor(accept: string) {
    super(`the audit API answers application/json only; Accept: ${accept.slice(0, 200)}`);
  }
}
