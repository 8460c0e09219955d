import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  configFields,
  databaseEnvFields,
  loadConfig,
  requireDatabaseUrl,
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
    HCP_AUTH_ISSUER: z.string().min(1).optional(),
    HCP_AUTH_AUDIENCE: z.string().min(1).optional(),
    HCP_AUTH_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    HCP_AUTH_PUBLIC_KEY_FILE: z.string().min(1).optional(),
    HCP_AUTH_JWKS_URL: z.url().optional(),
  })
  .superRefine((env, ctx) => {
    requireDatabaseUrl(env, ctx);
    const keys = [
      env.HCP_AUTH_HS256_SECRET,
      env.HCP_AUTH_PUBLIC_KEY_FILE,
      env.HCP_AUTH_JWKS_URL,
    ].filter((k) => k !== undefined);
    if (keys.length > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['HCP_AUTH_HS256_SECRET'],
        message:
          'set at most one of HCP_AUTH_HS256_SECRET, HCP_AUTH_PUBLIC_KEY_FILE, HCP_AUTH_JWKS_URL',
      });
    // A key without issuer/audience would accept any issuer's token signed with it.
    if (keys.length > 0)
      for (const name of ['HCP_AUTH_ISSUER', 'HCP_AUTH_AUDIENCE'] as const)
        if (env[name] === undefined)
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'required when a token key source (HCP_AUTH_*) is set',
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
  const { HCP_AUTH_ISSUER: issuer, HCP_AUTH_AUDIENCE: audience } = config;
  if (issuer === undefined || audience === undefined) return undefined;
  const base = { issuer, audience };
  if (config.HCP_AUTH_HS256_SECRET !== undefined)
    return { ...base, hs256Secret: config.HCP_AUTH_HS256_SECRET };
  if (config.HCP_AUTH_PUBLIC_KEY_FILE !== undefined)
    return { ...base, publicKeyPem: readFileSync(config.HCP_AUTH_PUBLIC_KEY_FILE, 'utf8') };
  if (config.HCP_AUTH_JWKS_URL !== undefined) return { ...base, jwksUrl: config.HCP_AUTH_JWKS_URL };
  return undefined;
}

/** Which database the configuration selects (shared rule, in @hcp/platform). */
export { databaseConfigOf } from '@hcp/platform';
