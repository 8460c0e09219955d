import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { TokenVerifierOptions } from '../auth/token-verifier';
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

/**
 * A benchmark-only variable, present in a schema only to refuse it: a production process that
 * finds it set (to anything but an accepted value; blank counts as unset) does not start, so a
 * deployment cannot switch a check off by environment. The benchmark composes its modes in code.
 */
function refusedOutsideBenchmark(accepted: (value: string) => boolean, message: string) {
  return z
    .string()
    .optional()
    .superRefine((text, ctx) => {
      const value = (text ?? '').trim();
      if (value !== '' && !accepted(value.toLowerCase()))
        ctx.addIssue({ code: 'custom', message: `set, but ${message}` });
    })
    .transform(() => undefined);
}

/**
 * The measurement switches every production entry point refuses (`...benchmarkOnlyEnvFields` in
 * its schema): the edge, policy-decision and `pnpm start` share one rule and one message.
 */
export const benchmarkOnlyEnvFields = {
  HCP_EDGE_MODE: refusedOutsideBenchmark(
    (v) => v === 'hcp',
    'the measurement baselines (naive, connection) exist only in the benchmark (pnpm bench:attacks); production enforces hcp and takes no mode',
  ),
  HCP_ABLATIONS: refusedOutsideBenchmark(
    () => false,
    'ablation switches exist only in the benchmark (pnpm bench:attacks); production cannot be started with a check switched off',
  ),
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

const authKeyFields = {
  HCP_AUTH_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  HCP_AUTH_PUBLIC_KEY_FILE: z.string().min(1).optional(),
  HCP_AUTH_JWKS_URL: z.url().optional(),
};

/**
 * The token-verifier variables a service reads (`...authEnvFields(true)`; refine with
 * requireAuthEnv). Required issuer and audience are checked per field, so a missing one is named
 * beside every other bad variable.
 */
export function authEnvFields(required: true): typeof authKeyFields & {
  HCP_AUTH_ISSUER: z.ZodString;
  HCP_AUTH_AUDIENCE: z.ZodString;
};
export function authEnvFields(required: false): typeof authKeyFields & {
  HCP_AUTH_ISSUER: z.ZodOptional<z.ZodString>;
  HCP_AUTH_AUDIENCE: z.ZodOptional<z.ZodString>;
};
export function authEnvFields(required: boolean) {
  const field = (what: string) => {
    const message = `required: the ${what} accepted tokens carry`;
    const text = z.string({ error: message }).min(1, message);
    return required ? text : text.optional();
  };
  return {
    HCP_AUTH_ISSUER: field('issuer (iss)'),
    HCP_AUTH_AUDIENCE: field('audience (aud)'),
    ...authKeyFields,
  };
}

/** The parsed token-verifier variables. */
export interface AuthEnv {
  readonly HCP_AUTH_ISSUER?: string | undefined;
  readonly HCP_AUTH_AUDIENCE?: string | undefined;
  readonly HCP_AUTH_HS256_SECRET?: string | undefined;
  readonly HCP_AUTH_PUBLIC_KEY_FILE?: string | undefined;
  readonly HCP_AUTH_JWKS_URL?: string | undefined;
}

const AUTH_KEY_SOURCES = 'HCP_AUTH_HS256_SECRET, HCP_AUTH_PUBLIC_KEY_FILE, HCP_AUTH_JWKS_URL';

/**
 * Schema refinement for authEnvFields: at most one key source (exactly one when `required`),
 * and issuer and audience whenever a key is set — a key without them would accept any issuer's
 * token signed with it.
 */
export function requireAuthEnv(env: AuthEnv, ctx: z.RefinementCtx, required: boolean): void {
  const keys = [env.HCP_AUTH_HS256_SECRET, env.HCP_AUTH_PUBLIC_KEY_FILE, env.HCP_AUTH_JWKS_URL];
  const count = keys.filter((k) => k !== undefined).length;
  if (count > 1 || (required && count === 0))
    ctx.addIssue({
      code: 'custom',
      path: ['HCP_AUTH_HS256_SECRET'],
      message: `set ${required ? 'exactly' : 'at most'} one of ${AUTH_KEY_SOURCES}`,
    });
  if (count > 0)
    for (const name of ['HCP_AUTH_ISSUER', 'HCP_AUTH_AUDIENCE'] as const)
      if (env[name] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `required: the ${name === 'HCP_AUTH_ISSUER' ? 'issuer (iss)' : 'audience (aud)'} accepted tokens carry`,
        });
}

/** The verifier options the variables select (reads the public key file); undefined: no key set. */
export function tokenVerifierOptionsOf(env: AuthEnv): TokenVerifierOptions | undefined {
  const { HCP_AUTH_ISSUER: issuer, HCP_AUTH_AUDIENCE: audience } = env;
  if (issuer === undefined || audience === undefined) return undefined;
  const base = { issuer, audience };
  if (env.HCP_AUTH_HS256_SECRET !== undefined)
    return { ...base, hs256Secret: env.HCP_AUTH_HS256_SECRET };
  if (env.HCP_AUTH_PUBLIC_KEY_FILE !== undefined)
    return { ...base, publicKeyPem: readFileSync(env.HCP_AUTH_PUBLIC_KEY_FILE, 'utf8') };
  if (env.HCP_AUTH_JWKS_URL !== undefined) return { ...base, jwksUrl: env.HCP_AUTH_JWKS_URL };
  return undefined;
}
