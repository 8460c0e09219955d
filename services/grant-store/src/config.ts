import { z } from 'zod';
import { configFields, loadConfig, type DatabaseConfig } from '@hcp/platform';

/** Environment of the distributed grant-store process (docs/operations.md lists every variable). */
export const grantStoreConfigSchema = z
  .object({
    HCP_GRANT_STORE_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_GRANT_STORE_PORT: configFields.port(50051),
    /** `pglite` selects the in-process database; anything else needs HCP_DATABASE_URL. */
    HCP_DATABASE: z.enum(['postgres', 'pglite']).optional(),
    HCP_DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    HCP_PGLITE_DIR: z.string().min(1).optional(),
    /** Absent: an in-process bus (no other process sees hcp.grants.changed), logged as a warning. */
    HCP_NATS_URL: z.string().min(1).optional(),
    HCP_GRANT_STORE_DRAIN_MS: configFields.millis(10_000),
  })
  .superRefine((env, ctx) => {
    if (env.HCP_DATABASE !== 'pglite' && env.HCP_DATABASE_URL === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['HCP_DATABASE_URL'],
        message: 'required (postgres://user:pass@host:port/db) unless HCP_DATABASE=pglite',
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

/** Which database the configuration selects. */
export function databaseConfigOf(config: GrantStoreConfig): DatabaseConfig {
  if (config.HCP_DATABASE === 'pglite')
    return config.HCP_PGLITE_DIR === undefined
      ? { kind: 'pglite' }
      : { kind: 'pglite', dataDir: config.HCP_PGLITE_DIR };
  if (config.HCP_DATABASE_URL === undefined)
    throw new Error('HCP_DATABASE_URL is required unless HCP_DATABASE=pglite');
  return { kind: 'postgres', url: config.HCP_DATABASE_URL };
}
