import { createHash } from 'node:crypto';
import type { Principal } from '@hcp/core';
import type { TokenVerifier } from '@hcp/platform';

/** Bounds of the verified-token cache. */
export interface TokenCacheOptions {
  /** Entries kept at most (least recently used dropped first); default 10,000. */
  readonly maxEntries?: number;
  /**
   * Longest an entry lives after its verification, whatever the token's `exp` says. With a JWKS
   * key source this is the key set's cache age, so a key the issuer removed stops being honoured
   * by the cache no later than the verifier would stop honouring it after its next fetch.
   * Default: no bound but `exp`.
   */
  readonly maxEntryMs?: number;
  /** Injected clock (epoch ms) for tests; default Date.now. */
  readonly now?: () => number;
}

/** Default number of cached principals. */
export const DEFAULT_TOKEN_CACHE_ENTRIES = 10_000;

/**
 * jose's default `cacheMaxAge` of a remote JWKS (createRemoteJWKSet): how long the platform
 * verifier keeps a fetched key set. A cache entry of a JWKS-verified token lives no longer.
 */
export const JWKS_KEY_SET_MAX_AGE_MS = 10 * 60 * 1000;

interface Entry {
  readonly principal: Principal;
  /** Epoch ms after which the entry is never served: the token's exp, or the source's bound. */
  readonly until: number;
}

/**
 * A TokenVerifier that remembers the principal of a token it verified, so a caller presenting the
 * same token again does not pay the signature check per request (ADR 0005 §3). Keyed by the
 * token's SHA-256, never the token itself; an entry is served only before the token's `exp`, with
 * none of the verifier's clock tolerance added, and never past `maxEntryMs`. Only successes are
 * kept: a refused token is verified (and refused) again every time. HCP has no token deny list
 * (authority is withdrawn by revoking grants, which the PDP decides on every call), so nothing
 * else can make a cached principal stale.
 */
export class CachingTokenVerifier implements TokenVerifier {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxEntryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly inner: TokenVerifier,
    options: TokenCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? DEFAULT_TOKEN_CACHE_ENTRIES;
    if (!(this.maxEntries > 0)) throw new Error('token cache: maxEntries must be positive');
    this.maxEntryMs = options.maxEntryMs ?? Number.POSITIVE_INFINITY;
    if (!(this.maxEntryMs > 0)) throw new Error('token cache: maxEntryMs must be positive');
    this.now = options.now ?? Date.now;
  }

  /** How many principals are cached (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  async verify(token: string): Promise<Principal> {
    const key = typeof token === 'string' && token !== '' ? keyOf(token) : undefined;
    if (key !== undefined) {
      const hit = this.entries.get(key);
      if (hit !== undefined) {
        this.entries.delete(key);
        if (this.now() < hit.until) {
          this.entries.set(key, hit); // most recently used last
          return hit.principal;
        }
      }
    }
    const verifiedAt = this.now();
    const principal = await this.inner.verify(token);
    const exp = expiryOf(token);
    if (key !== undefined && exp !== undefined) {
      const until = Math.min(exp, verifiedAt + this.maxEntryMs);
      if (this.now() < until) this.remember(key, { principal, until });
    }
    return principal;
  }

  private remember(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

function keyOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * The `exp` of a token the inner verifier has just accepted, in epoch ms; undefined when it cannot
 * be read (then the principal is not cached). Read only after verification, so it is signed.
 */
function expiryOf(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const exp: unknown = (
      JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        exp?: unknown;
      }
    ).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
