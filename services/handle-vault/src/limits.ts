import { ConfigError } from '@hcp/platform';

/**
 * The vault's bounds. Every one is enforced, none is silently applied to data:
 * an oversized payload is refused (PAYLOAD_TOO_LARGE), never truncated; only
 * the TTL and the preview length are capped, as the proto documents.
 */
export interface VaultLimits {
  /** Largest payload one handle may hold. */
  readonly maxHandleBytes: number;
  /** Largest sum of payload sizes of one principal's live (unexpired) handles. */
  readonly maxPrincipalBytes: number;
  /** TTL of a handle whose Put left ttl unset. */
  readonly defaultTtlMs: number;
  /** Longest TTL; a longer one is capped to it. */
  readonly maxTtlMs: number;
  /** Preview length when Peek sends max_bytes 0. */
  readonly defaultPeekBytes: number;
  /** Longest preview; a larger max_bytes is capped to it. */
  readonly maxPeekBytes: number;
  /**
   * How long an expired row is kept (metadata and ciphertext) before the sweeper
   * purges it, so a caller retrying a stale handle learns HANDLE_EXPIRED rather
   * than HANDLE_NOT_OWNED for a while. Expired rows never count against quota.
   */
  readonly expiredRetentionMs: number;
}

/**
 * The gRPC message bound (grpc-js default 4 MiB for both server receive and
 * client receive) minus room for the envelope: a payload must fit in Put's
 * request and in ResolveForPipe's response.
 */
export const MAX_WIRE_PAYLOAD_BYTES = 4 * 1024 * 1024 - 64 * 1024;

/** The defaults every run mode starts from (main.ts maps each to an environment variable). */
export const DEFAULT_LIMITS: VaultLimits = {
  maxHandleBytes: 1024 * 1024,
  maxPrincipalBytes: 64 * 1024 * 1024,
  defaultTtlMs: 60 * 60 * 1000,
  maxTtlMs: 24 * 60 * 60 * 1000,
  defaultPeekBytes: 2048,
  maxPeekBytes: 16 * 1024,
  expiredRetentionMs: 60 * 60 * 1000,
};

/** Defaults overlaid with the given values, checked for consistency; ConfigError names the bad limit. */
export function resolveLimits(given: Partial<VaultLimits> = {}): VaultLimits {
  const limits: VaultLimits = { ...DEFAULT_LIMITS, ...stripUndefined(given) };
  const problems: { variable: string; message: string }[] = [];
  const bad = (variable: keyof VaultLimits, message: string) =>
    problems.push({ variable: `limits.${variable}`, message });
  for (const [key, value] of Object.entries(limits) as [keyof VaultLimits, number][]) {
    const min = key === 'expiredRetentionMs' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min)
      bad(key, `must be an integer >= ${min}, got ${value}`);
  }
  if (limits.maxHandleBytes > MAX_WIRE_PAYLOAD_BYTES)
    bad('maxHandleBytes', `must be at most ${MAX_WIRE_PAYLOAD_BYTES} (the gRPC message bound)`);
  if (limits.maxPrincipalBytes < limits.maxHandleBytes)
    bad('maxPrincipalBytes', 'must be at least maxHandleBytes');
  if (limits.defaultTtlMs > limits.maxTtlMs) bad('defaultTtlMs', 'must be at most maxTtlMs');
  if (limits.defaultPeekBytes > limits.maxPeekBytes)
    bad('defaultPeekBytes', 'must be at most maxPeekBytes');
  if (problems.length > 0) throw new ConfigError(problems);
  return limits;
}

function stripUndefined(given: Partial<VaultLimits>): Partial<VaultLimits> {
  return Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
}
