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

/** Environment of the distributed audit-log process (docs/operations.md lists every variable). */
export const auditLogConfigSchema = z
  .object({
    HCP_AUDIT_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_AUDIT_HTTP_PORT: configFields.port(8082),
    /** Absent: no gRPC AuditLog side (REST only). */
    HCP_AUDIT_GRPC_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    ...databaseEnvFields,
    HCP_NATS_URL: z.string().min(1, 'required: nats://host:port'),
    ...authEnvFields(true),
    HCP_AUDIT_ACK_WAIT_MS: configFields.millis(30_000),
    HCP_AUDIT_DRAIN_MS: configFields.millis(10_000),
  })
  .superRefine((env, ctx) => {
    requireDatabaseUrl(env, ctx);
    requireAuthEnv(env, ctx, true);
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
  return tokenVerifierOptionsOf(config)!;
}

/** Which database the configuration selects (shared rule, in @hcp/platform). */
export { databaseConfigOf } from '@hcp/platform';
