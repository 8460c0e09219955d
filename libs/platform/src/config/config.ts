import { z } from 'zod';

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
