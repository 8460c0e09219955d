import { z } from 'zod';
import { configFields, databaseEnvFields, loadConfig, requireDatabaseUrl } from '@hcp/platform';
import { ACTIVE_KEY_VARIABLE, KEYS_VARIABLE, keyringProblems, VaultKeyring } from './keyring';
import { DEFAULT_LIMITS, MAX_WIRE_PAYLOAD_BYTES, type VaultLimits } from './limits';
import { DEFAULT_SWEEP_INTERVAL_MS } from './handle-vault.module';

const bytes = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().positive().max(max).default(fallback);

/** The bounds a handle lifetime setting must lie within: 1 s to 7 days. */
export const HANDLE_TTL_BOUNDS_MS = { min: 1_000, max: 7 * 24 * 3_600_000 } as const;

const handleTtl = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(HANDLE_TTL_BOUNDS_MS.min)
    .max(HANDLE_TTL_BOUNDS_MS.max)
    .default(fallback);

/** Environment of the distributed handle-vault process (docs/operations.md lists every variable). */
export const handleVaultConfigSchema = z
  .object({
    HCP_VAULT_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_VAULT_PORT: configFields.port(50053),
    ...databaseEnvFields,
    /** Absent: audit entries go to an in-process bus nobody else reads (logged loudly). */
    HCP_NATS_URL: z.string().min(1).optional(),
    /** `kid1:<base64 of 32 bytes>,kid2:...`; secret. */
    [KEYS_VARIABLE]: z.string({ error: 'required: kid:<base64 of 32 bytes>[,kid:...]' }),
    [ACTIVE_KEY_VARIABLE]: z.string({ error: `required: the id of a key in ${KEYS_VARIABLE}` }),
    HCP_VAULT_MAX_HANDLE_BYTES: bytes(DEFAULT_LIMITS.maxHandleBytes, MAX_WIRE_PAYLOAD_BYTES),
    HCP_VAULT_MAX_PRINCIPAL_BYTES: bytes(DEFAULT_LIMITS.maxPrincipalBytes),
    /** How long a handle lives when Put names no TTL; a longer requested TTL is capped at the max. */
    HCP_VAULT_DEFAULT_TTL_MS: handleTtl(DEFAULT_LIMITS.defaultTtlMs),
    HCP_VAULT_MAX_TTL_MS: handleTtl(DEFAULT_LIMITS.maxTtlMs),
    HCP_VAULT_PEEK_DEFAULT_BYTES: bytes(DEFAULT_LIMITS.defaultPeekBytes),
    HCP_VAULT_PEEK_MAX_BYTES: bytes(DEFAULT_LIMITS.maxPeekBytes),
    HCP_VAULT_EXPIRED_RETENTION_MS: z.coerce
      .number()
      .int()
      .min(0)
      .default(DEFAULT_LIMITS.expiredRetentionMs),
    HCP_VAULT_SWEEP_INTERVAL_MS: configFields.millis(DEFAULT_SWEEP_INTERVAL_MS),
    HCP_VAULT_DRAIN_MS: configFields.millis(10_000),
  })
  .superRefine((env, ctx) => {
    requireDatabaseUrl(env, ctx);
    for (const p of keyringProblems(env[KEYS_VARIABLE], env[ACTIVE_KEY_VARIABLE]))
      ctx.addIssue({ code: 'custom', path: [p.variable], message: p.message });
    const pairs: [string, number, string, number][] = [
      [
        'HCP_VAULT_MAX_PRINCIPAL_BYTES',
        env.HCP_VAULT_MAX_PRINCIPAL_BYTES,
        'HCP_VAULT_MAX_HANDLE_BYTES',
        env.HCP_VAULT_MAX_HANDLE_BYTES,
      ],
      [
        'HCP_VAULT_MAX_TTL_MS',
        env.HCP_VAULT_MAX_TTL_MS,
        'HCP_VAULT_DEFAULT_TTL_MS',
        env.HCP_VAULT_DEFAULT_TTL_MS,
      ],
      [
        'HCP_VAULT_PEEK_MAX_BYTES',
        env.HCP_VAULT_PEEK_MAX_BYTES,
        'HCP_VAULT_PEEK_DEFAULT_BYTES',
        env.HCP_VAULT_PEEK_DEFAULT_BYTES,
      ],
    ];
    for (const [big, bigValue, small, smallValue] of pairs)
      if (bigValue < smallValue)
        ctx.addIssue({ code: 'custom', path: [big], message: `must be at least ${small}` });
  });

/** The parsed configuration. */
export type HandleVaultConfig = z.infer<typeof handleVaultConfigSchema>;

/**
 * Reads and validates the environment; throws ConfigError naming each bad
 * variable (a key that is not exactly 32 bytes names HCP_VAULT_KEYS, without
 * echoing key material).
 */
export function loadHandleVaultConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): HandleVaultConfig {
  return loadConfig(handleVaultConfigSchema, env);
}

/** The keyring the configuration names. */
export function keyringOf(config: HandleVaultConfig): VaultKeyring {
  return VaultKeyring.parse(config[KEYS_VARIABLE], config[ACTIVE_KEY_VARIABLE]);
}

/** The limits the configuration sets. */
export function limitsOf(config: HandleVaultConfig): VaultLimits {
  return {
    maxHandleBytes: config.HCP_VAULT_MAX_HANDLE_BYTES,
    maxPrincipalBytes: config.HCP_VAULT_MAX_PRINCIPAL_BYTES,
    defaultTtlMs: config.HCP_VAULT_DEFAULT_TTL_MS,
    maxTtlMs: config.HCP_VAULT_MAX_TTL_MS,
    defaultPeekBytes: config.HCP_VAULT_PEEK_DEFAULT_BYTES,
    maxPeekBytes: config.HCP_VAULT_PEEK_MAX_BYTES,
    expiredRetentionMs: config.HCP_VAULT_EXPIRED_RETENTION_MS,
  };
}

/** Which database the configuration selects (shared rule, in @hcp/platform). */
export { databaseConfigOf } from '@hcp/platform';
