/** DI token of the token verifier the HTTP and gRPC front doors authenticate operators with. */
export const AUDIT_TOKEN_VERIFIER = Symbol('AUDIT_TOKEN_VERIFIER');
/** DI token of the readiness probe (database reachable, consumer running). */
export const AUDIT_READINESS = Symbol('AUDIT_READINESS');
/** DI token of the holder of the generated OpenAPI document. */
export const AUDIT_OPENAPI = Symbol('AUDIT_OPENAPI');
