import { createPublicKey, type KeyObject } from 'node:crypto';
import { HcpError, type Principal, type PrincipalKind } from '@hcp/core';
import { createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';

/** The claim that carries a principal's kind; absent means `agent` (the least privileged). */
export const PRINCIPAL_KIND_CLAIM = 'hcp_kind';

/** How tokens are checked: who must have issued them, for whom, and with which key (exactly one). */
export interface TokenVerifierOptions {
  readonly issuer: string;
  readonly audience: string;
  /** Shared HS256 secret, at least 32 bytes (demo, tests, single-operator installs). */
  readonly hs256Secret?: string;
  /** SPKI public key in PEM (RSA, EC or Ed25519); the issuer signs with its private key. */
  readonly publicKeyPem?: string;
  /** The issuer's JWKS endpoint; keys are fetched, cached and rotated by jose. */
  readonly jwksUrl?: string;
  /** Allowed clock skew for exp/nbf/iat; default 30 s. */
  readonly clockToleranceSec?: number;
}

/** Turns a bearer token into a principal, or refuses with PRINCIPAL_UNAUTHENTICATED. */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}

/** What mintToken needs; HS256 only, since it exists for tests and the embedded demo. */
export interface MintTokenOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly hs256Secret: string;
  /** Lifetime; default 3600 s. */
  readonly ttlSec?: number;
}

const MIN_SECRET_BYTES = 32;
const ASYMMETRIC_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];
const KINDS: readonly PrincipalKind[] = ['agent', 'operator', 'service'];

function secretKey(secret: string): Uint8Array {
  const bytes = new TextEncoder().encode(secret);
  // A short HMAC secret can be brute-forced offline from any one token.
  if (bytes.length < MIN_SECRET_BYTES)
    throw new Error(`the HS256 secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return bytes;
}

const unauthenticated = (why: string) => new HcpError('PRINCIPAL_UNAUTHENTICATED', why);

/**
 * C0 and C1 controls (NUL, ESC, DEL and the rest) and lone UTF-16 surrogates. A principal id is
 * printed in logs and matched against grants; a control character could forge a log line or make
 * two ids look alike, and neither has a place in an identifier. Letters of any script are fine.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u; // Cc: U+0000–001F, U+007F–009F; Cs: a lone surrogate

/** A safe, specific reason for a refused token (no token content, no key material). */
function refusalOf(err: unknown): HcpError {
  if (err instanceof HcpError) return err;
  if (err instanceof errors.JWTExpired) return unauthenticated('token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'iss':
        return unauthenticated('token issuer not accepted');
      case 'aud':
        return unauthenticated('token audience not accepted');
      case 'nbf':
        return unauthenticated('token not yet valid');
      default:
        return unauthenticated(`token claim ${err.claim} invalid`);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return unauthenticated('token signature invalid');
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported)
    return unauthenticated('token algorithm not accepted');
  if (err instanceof errors.JWKSNoMatchingKey) return unauthenticated('token key not known');
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid)
    return unauthenticated('token keys could not be fetched');
  if (err instanceof errors.JOSEError) return unauthenticated('token malformed');
  return unauthenticated('token could not be verified');
}

/**
 * Creates the verifier every HTTP/gRPC front door uses. Exactly one key source must be given;
 * misconfiguration throws at boot, not at the first request.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const sources = [options.hs256Secret, options.publicKeyPem, options.jwksUrl].filter(
    (s) => s !== undefined && s !== '',
  );
  if (sources.length !== 1)
    throw new Error(
      'token verifier: give exactly one of hs256Secret, publicKeyPem, jwksUrl ' +
        `(${sources.length} given)`,
    );
  if (options.issuer === '' || options.audience === '')
    throw new Error('token verifier: issuer and audience are required');

  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (options.hs256Secret) {
    key = secretKey(options.hs256Secret);
    algorithms = ['HS256'];
  } else if (options.publicKeyPem) {
    key = createPublicKey({ key: options.publicKeyPem, format: 'pem' });
    algorithms = ASYMMETRIC_ALGS;
  } else {
    key = createRemoteJWKSet(new URL(options.jwksUrl!));
    algorithms = ASYMMETRIC_ALGS;
  }
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms,
    clockTolerance: options.clockToleranceSec ?? 30,
    requiredClaims: ['exp', 'sub'],
  };

  return {
    async verify(token: string): Promise<Principal> {
      if (typeof token !== 'string' || token === '') throw unauthenticated('no token');
      let payload;
      try {
        // The overloads differ only in the key type; each branch narrows to one of them.
        payload =
          typeof key === 'function'
            ? (await jwtVerify(token, key, verifyOptions)).payload
            : (await jwtVerify(token, key, verifyOptions)).payload;
      } catch (err: unknown) {
        throw refusalOf(err);
      }
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub === '') throw unauthenticated('token has no subject');
      if (UNPRINTABLE.test(sub))
        throw unauthenticated('token subject contains a control character or a lone surrogate');
      const claim: unknown = payload[PRINCIPAL_KIND_CLAIM];
      const kind = claim === undefined ? 'agent' : KINDS.find((k) => k === claim);
      if (kind === undefined) throw unauthenticated(`token ${PRINCIPAL_KIND_CLAIM} not recognised`);
      const name: unknown = payload['name'];
      return {
        id: sub,
        kind,
        ...(typeof name === 'string' && name !== '' ? { displayName: name } : {}),
      };
    },
  };
}

/** Signs an HS256 token for a principal: tests, the embedded demo, and curl examples. */
export async function mintToken(principal: Principal, options: MintTokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    [PRINCIPAL_KIND_CLAIM]: principal.kind,
    ...(principal.displayName !== undefined ? { name: principal.displayName } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(principal.id)
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttlSec ?? 3600))
    .sign(secretKey(options.hs256Secret));
}

/** The token of an `Authorization: Bearer <token>` header, or PRINCIPAL_UNAUTHENTICATED. */
export function bearerToken(authorization: string | undefined): string {
  const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization ?? '');
  if (match === null) throw unauthenticated('no bearer token');
  return match[1]!;
}
