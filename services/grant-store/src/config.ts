import { z } from 'zod';
import {
  authEnvFields,
  configFields,
  databaseEnvFields,
  loadConfig,
  requireAuthEnv,
  requireDatabaseUrl,
  tokenVerifierOptionsOf,
  type TokenVerifierOptions,
} from '@hcp/platform';
import { DEFAULT_APPROVAL_TTL_MS, MAX_APPROVAL_TTL_MS } from './approval.service';
import type { ApprovalLifetimes } from './grant-store.tokens';

/** The bounds an approval lifetime setting must lie within: 1 s to 7 days. */
export const APPROVAL_TTL_BOUNDS_MS = { min: 1_000, max: 7 * 24 * 3_600_000 } as const;

const approvalTtl = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(APPROVAL_TTL_BOUNDS_MS.min)
    .max(APPROVAL_TTL_BOUNDS_MS.max)
    .default(fallback);

/** Environment of the distributed grant-store process (docs/operations.md lists every variable). */
export const grantStoreConfigSchema = z
  .object({
    HCP_GRANT_STORE_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_GRANT_STORE_PORT: configFields.port(50051),
    ...databaseEnvFields,
    /** Absent: an in-process bus (no other process sees hcp.grants.changed), logged as a warning. */
    HCP_NATS_URL: z.string().min(1).optional(),
    HCP_GRANT_STORE_DRAIN_MS: configFields.millis(10_000),
    /** How long an approval stays usable when RequestApproval names no TTL. */
    HCP_APPROVAL_DEFAULT_TTL_MS: approvalTtl(DEFAULT_APPROVAL_TTL_MS),
    /** The longest an approval stays usable; a longer requested TTL is capped to it. */
    HCP_APPROVAL_MAX_TTL_MS: approvalTtl(MAX_APPROVAL_TTL_MS),
    /**
     * Operator tokens for DecideApproval/ListApprovals, as audit-log reads them. No key source
     * at all: DecideApproval trusts metadata hcp-principal-id (development only, logged).
     */
    ...authEnvFields(false),
  })
  .superRefine((env, ctx) => {
    requireDatabaseUrl(env, ctx);
    requireAuthEnv(env, ctx, false);
    if (env.HCP_APPROVAL_MAX_TTL_MS < env.HCP_APPROVAL_DEFAULT_TTL_MS)
      ctx.addIssue({
        code: 'custom',
        path: ['HCP_APPROVAL_MAX_TTL_MS'],
        message: 'must be at least HCP_APPROVAL_DEFAULT_TTL_MS',
      });
  });

/** The parsed configuration. */
export type GrantStoreConfig = z.infer<typeof grantStoreConfigSchema>;

/** Reads and validates the environment; throws ConfigError naming each bad variable. */
export function loadGrantStoreConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): GrantStoreConfig {
  return loadConfig(grantStoreConfigSchema, env);
}

/**
 * The operator-token verifier options the configuration selects (reads the public key file);
 * undefined when no key source is set, i.e. the development-only metadata path.
 */
export function verifierOptionsOf(config: GrantStoreConfig): TokenVerifierOptions | undefined {
  return tokenVerifierOptionsOf(config);
}

/** The approval lifetimes the configuration sets. */
export function approvalLifetimesOf(config: GrantStoreConfig): ApprovalLifetimes {
  return {
    defaultTtlMs: config.HCP_APPROVAL_DEFAULT_TTL_MS,
    maxTtlMs: config.HCP_APPROVAL_MAX_TTL_MS,
  };
}

/** Which database the configuration selects (shared rule, in @hcp/platform). */
export { databaseConfigOf } from '@hcp/platform';
