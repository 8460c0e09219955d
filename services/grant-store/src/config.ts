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

/** Environment of the distributed grant-store process (docs/operations.md lists every variable). */
export const grantStoreConfigSchema = z
  .object({
    HCP_GRANT_STORE_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_GRANT_STORE_PORT: configFields.port(50051),
    ...databaseEnvFields,
    /** Absent: an in-process bus (no other process sees hcp.grants.changed), logged as a warning. */
    HCP_NATS_URL: z.string().min(1).optional(),
    HCP_GRANT_STORE_DRAIN_MS: configFields.millis(10_000),
    /**
     * Operator tokens for DecideApproval/ListApprovals, as audit-log reads them. No key source
     * at all: DecideApproval trusts metadata hcp-principal-id (development only, logged).
     */
    ...authEnvFields(false),
  })
  .superRefine((env, ctx) => {
    requireDatabaseUrl(env, ctx);
    requireAuthEnv(env, ctx, false);
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

/** Which database the configuration selects (shared rule, in @hcp/platform). */
export { databaseConfigOf } from '@hcp/platform';
