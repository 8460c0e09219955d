import type { Principal, PrincipalKind } from '@hcp/core';
import { HcpError } from '@hcp/core';
import { bearerToken, type TokenVerifier } from '@hcp/platform';

/** How the 401 challenge describes this edge (RFC 6750 §3, MCP authorization spec). */
export interface BearerChallengeOptions {
  /** default 'hcp' */
  readonly realm?: string;
  /** The OAuth protected-resource metadata URL (RFC 9728); MCP clients use it to find the issuer. */
  readonly resourceMetadataUrl?: string;
}

/**
 * The typed refusal of an unauthenticated request: always HTTP 401 with a WWW-Authenticate
 * challenge, so every route (POST, GET stream, DELETE) refuses the same way.
 */
export interface AuthenticationError {
  readonly reason: 'PRINCIPAL_UNAUTHENTICATED';
  readonly httpStatus: 401;
  /** -32001 is what MCP SDK servers answer for auth failures at the transport. */
  readonly jsonRpcCode: number;
  /** Safe to show: says what was wrong with the credential, never its content. */
  readonly message: string;
  /** The WWW-Authenticate header value. */
  readonly wwwAuthenticate: string;
  /** Who presented a valid token of a kind this endpoint does not serve (for the audit entry). */
  readonly principal?: Principal;
}

/** Either the principal or the refusal; never throws for a bad credential. */
export type AuthenticationResult =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly error: AuthenticationError };

/**
 * The principal kinds /mcp serves: agents only. An operator decides approvals and reads the audit
 * through their own services, a service token speaks gRPC between services; neither calls tools.
 */
export const MCP_PRINCIPAL_KINDS: readonly PrincipalKind[] = ['agent'];

/** JSON-RPC code carried by an authentication refusal. */
export const AUTH_JSON_RPC_CODE = -32001;

/** Makes a value safe inside an RFC 7230 quoted-string (no quotes, backslashes or controls). */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]|["\\]/g, '')}"`;
}

/** Builds the RFC 6750 challenge; `error="invalid_token"` only when a token was presented. */
export function bearerChallenge(
  options: BearerChallengeOptions,
  failure?: { readonly description: string },
): string {
  const parts = [`realm=${quoted(options.realm ?? 'hcp')}`];
  if (options.resourceMetadataUrl !== undefined)
    parts.push(`resource_metadata=${quoted(options.resourceMetadataUrl)}`);
  if (failure !== undefined)
    parts.push('error="invalid_token"', `error_description=${quoted(failure.description)}`);
  return `Bearer ${parts.join(', ')}`;
}

/**
 * Turns an Authorization header into a principal with the platform's token verifier (issuer,
 * audience, expiry, key from configuration or JWKS). Node gives a repeated header as an array;
 * two credentials are ambiguous, so that is refused rather than picking one. A valid token of a
 * kind outside `kinds` (default MCP_PRINCIPAL_KINDS) is refused too: it names no principal this
 * endpoint serves.
 */
export async function authenticateBearer(
  authorization: string | readonly string[] | undefined,
  verifier: TokenVerifier,
  options: BearerChallengeOptions = {},
  kinds: readonly PrincipalKind[] = MCP_PRINCIPAL_KINDS,
): Promise<AuthenticationResult> {
  const refuse = (message: string, presented: boolean, who?: Principal): AuthenticationResult => ({
    ok: false,
    error: {
      ...(who === undefined ? {} : { principal: who }),
      reason: 'PRINCIPAL_UNAUTHENTICATED',
      httpStatus: 401,
      jsonRpcCode: AUTH_JSON_RPC_CODE,
      message,
      // RFC 6750 §3.1: a request without credentials gets no error code, only the challenge.
      wwwAuthenticate: bearerChallenge(options, presented ? { description: message } : undefined),
    },
  });

  let header: string | undefined;
  if (typeof authorization === 'string' || authorization === undefined) header = authorization;
  else if (authorization.length === 1) header = authorization[0];
  else if (authorization.length > 1) return refuse('more than one Authorization header', true);

  if (header === undefined || header.trim() === '') return refuse('no bearer token', false);
  let token: string;
  try {
    token = bearerToken(header);
  } catch (err: unknown) {
    if (err instanceof HcpError) return refuse('Authorization is not a bearer token', true);
    throw err;
  }
  let principal: Principal;
  try {
    principal = await verifier.verify(token);
  } catch (err: unknown) {
    // The verifier's messages name the failed claim only (expired, issuer, signature...).
    if (err instanceof HcpError && err.reason === 'PRINCIPAL_UNAUTHENTICATED')
      return refuse(err.message, true);
    throw err;
  }
  if (!kinds.includes(principal.kind))
    return refuse(
      `a token of kind ${principal.kind} is not accepted here: only ${kinds.join(', ')} principals`,
      true,
      principal,
    );
  return { ok: true, principal };
}
