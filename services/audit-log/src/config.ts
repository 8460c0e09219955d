import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  configFields,
  databaseEnvFields,
  loadConfig,
  requireDatabaseUrl,
  type TokenVerifierOptions,
} from '@hcp/platform';

/** Environment of the distributed audit-log process (docs/operations.md lists every variable). */
export const auditLogConfigSchema = z
  .object({
    HCP_AUDIT_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_AUDIT_HTTP_PORT: configFields.port(8082),
    /** Absent: no gRPC AuditLog side (REST only). */
    HCP_AUDIT_GRPC_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    ...databaseEnvFields,
    HCP_NATS_URL: z.string().min(1, 'required: nats://host:port'),
    HCP_AUTH_ISSUER: z.string().min(1, 'required: the issuer (iss) operator tokens carry'),
    HCP_AUTH_AUDIENCE: z.string().min(1, 'required: the audience (aud) operator tokens carry'),
    HCP_AUTH_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    HCP_AUTH_PUBLIC_KEY_FILE: z.string().min(1).optional(),
    HCP_AUTH_JWKS_URL: z.url().optional(),
    HCP_AUDIT_ACK_WAIT_MS: configFields.millis(30_000),
    HCP_AUDIT_DRAIN_MS: configFields.millis(10_000),
  })
  .superRefine((env, ctx) => {
    requireDatabaseUrl(env, ctx);
    const keys = [
      env.HCP_AUTH_HS256_SECRET,
      env.HCP_AUTH_PUBLIC_KEY_FILE,
      env.HCP_AUTH_JWKS_URL,
    ].filter((k) => k !== undefined);
    if (keys.length !== 1)
      ctx.addIssue({
        code: 'custom',
        path: ['HCP_AUTH_HS256_SECRET'],
        message:
          'set exactly one of HCP_AUTH_HS256_SECRET, HCP_AUTH_PUBLIC_KEY_FILE, HCP_AUTH_JWKS_URL',
      });
  });

/** The parsed configuration. */
export type AuditLogConfig = z.infer<typeof auditLogConfigSchema>;

/** Reads and validates the environment; throws ConfigError naming each bad variable. */
export function loadAuditLogConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): AuditLogConfig {
  return loadConfig(auditLogConfigSchema, env);
}

/** The token verifier options the configuration selects (reads the public key file). */
export function verifierOptionsOf(config: AuditLogConfig): TokenVerifierOptions {
  const base = { issuer: config.HCP_AUTH_ISSUER, audience: config.HCP_AUTH_AUDIENCE };
  if (config.HCP_AUTH_HS256_SECRET !== undefined)
    return { ...base, hs256Secret: config.HCP_AUTH_HS256_SECRET };
  if (config.HCP_AUTH_PUBLIC_KEY_FILE !== undefined)
    return { ...base, publicKeyPem: readFileSync(config.HCP_AUTH_PUBLIC_KEY_FILE, 'utf8') };
  return { ...base, jwksUrl: config.HCP_AUTH_JWKS_URL! };
}

/** Which database the configuration selects (shared rule, in @hcp/platform). */
export { databaseConfigOf } from '@hcp/platform';
