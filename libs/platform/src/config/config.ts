import { z } from 'zod';
import type { DatabaseConfig } from '../db/database';

/** Raised at boot when the environment does not satisfy a service's schema; names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(
      `invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`,
    );
  }
}

/**
 * Parses the environment once, at boot, against a zod schema whose keys are
 * the variable names. Fails fast with every bad variable named, so a
 * misconfigured pod dies with a readable message instead of half-starting.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: Readonly<Record<string, string | undefined>> = process.env,
): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((i) => ({
      variable: i.path.map(String).join('.') || '(root)',
      message: i.message,
    })),
  );
}

/** Schema pieces every service shares. */
export const configFields = {
  /** A TCP port number given as text. */
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  /** A positive duration in milliseconds given as text. */
  millis: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  /** A boolean given as `true`/`false`/`1`/`0`. */
  flag: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0'])
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1'),
};

/** The database variables every stateful service reads (`...databaseEnvFields` in its schema). */
export const databaseEnvFields = {
  /** `pglite` selects the in-process database; anything else needs HCP_DATABASE_URL. */
  HCP_DATABASE: z.enum(['postgres', 'pglite']).optional(),
  HCP_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  HCP_PGLITE_DIR: z.string().min(1).optional(),
};

/** The parsed database variables. */
export interface DatabaseEnv {
  readonly HCP_DATABASE?: 'postgres' | 'pglite' | undefined;
  readonly HCP_DATABASE_URL?: string | undefined;
  readonly HCP_PGLITE_DIR?: string | undefined;
}

/** Schema refinement: HCP_DATABASE_URL is required unless HCP_DATABASE=pglite. */
export function requireDatabaseUrl(env: DatabaseEnv, ctx: z.RefinementCtx): void {
  if (env.HCP_DATABASE !== 'pglite' && env.HCP_DATABASE_URL === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['HCP_DATABASE_URL'],
      message: 'required (postgres://user:pass@host:port/db) unless HCP_DATABASE=pglite',
    });
}

/** Which database the variables select. */
export function databaseConfigOf(env: DatabaseEnv): DatabaseConfig {
  if (env.HCP_DATABASE === 'pglite')
    return env.HCP_PGLITE_DIR === undefined
      ? { kind: 'pglite' }
      : { kind: 'pglite', dataDir: env.HCP_PGLITE_DIR };
  if (env.HCP_DATABASE_URL === undefined)
    throw new Error('HCP_DATABASE_URL is required unless HCP_DATABASE=pglite');
  return { kind: 'postgres', url: env.HCP_DATABASE_URL };
}
