import { randomBytes } from 'node:crypto';
import { ConfigError } from '@hcp/platform';
import { databaseConfigOf, keyringOf, limitsOf, loadHandleVaultConfig } from './config';
import { DEFAULT_LIMITS } from './limits';

const key = (n = 32) => randomBytes(n).toString('base64');
const base = { HCP_DATABASE: 'pglite', HCP_VAULT_KEYS: `k1:${key()}`, HCP_VAULT_ACTIVE_KEY: 'k1' };

/** The variables a bad environment is refused for. */
function badVariables(env: Record<string, string>): string[] {
  try {
    loadHandleVaultConfig(env);
  } catch (err: unknown) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.variable).sort();
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('handle-vault configuration', () => {
  it('defaults port, limits and sweep interval; builds the keyring and the database config', () => {
    const config = loadHandleVaultConfig(base);
    expect(config).toMatchObject({
      HCP_VAULT_HOST: '127.0.0.1',
      HCP_VAULT_PORT: 50053,
      HCP_VAULT_SWEEP_INTERVAL_MS: 60_000,
      HCP_VAULT_MAX_HANDLE_BYTES: 1024 * 1024,
      HCP_VAULT_MAX_PRINCIPAL_BYTES: 64 * 1024 * 1024,
    });
    expect(limitsOf(config)).toEqual(DEFAULT_LIMITS);
    expect(databaseConfigOf(config)).toEqual({ kind: 'pglite' });
    expect(keyringOf(config).activeKeyId).toBe('k1');
    expect(
      databaseConfigOf(
        loadHandleVaultConfig({
          ...base,
          HCP_DATABASE: 'postgres',
          HCP_DATABASE_URL: 'postgres://u@h/db',
        }),
      ),
    ).toEqual({ kind: 'postgres', url: 'postgres://u@h/db' });
  });

  it('reads every limit', () => {
    const config = loadHandleVaultConfig({
      ...base,
      HCP_VAULT_MAX_HANDLE_BYTES: '2048',
      HCP_VAULT_MAX_PRINCIPAL_BYTES: '4096',
      HCP_VAULT_DEFAULT_TTL_MS: '1000',
      HCP_VAULT_MAX_TTL_MS: '2000',
      HCP_VAULT_PEEK_DEFAULT_BYTES: '10',
      HCP_VAULT_PEEK_MAX_BYTES: '20',
      HCP_VAULT_EXPIRED_RETENTION_MS: '0',
    });
    expect(limitsOf(config)).toEqual({
      maxHandleBytes: 2048,
      maxPrincipalBytes: 4096,
      defaultTtlMs: 1000,
      maxTtlMs: 2000,
      defaultPeekBytes: 10,
      maxPeekBytes: 20,
      expiredRetentionMs: 0,
    });
  });

  it('refuses a key that is not exactly 32 bytes, naming HCP_VAULT_KEYS', () => {
    expect(badVariables({ ...base, HCP_VAULT_KEYS: `k1:${key(16)}` })).toEqual(['HCP_VAULT_KEYS']);
    expect(badVariables({ ...base, HCP_VAULT_KEYS: `k1:${key(48)}` })).toEqual(['HCP_VAULT_KEYS']);
    expect(badVariables({ ...base, HCP_VAULT_ACTIVE_KEY: 'k2' })).toEqual(['HCP_VAULT_ACTIVE_KEY']);
    expect(badVariables({ HCP_DATABASE: 'pglite' })).toEqual([
      'HCP_VAULT_ACTIVE_KEY',
      'HCP_VAULT_KEYS',
    ]);
  });

  it('names every other bad variable', () => {
    expect(
      badVariables({ ...base, HCP_VAULT_PORT: '70000', HCP_VAULT_MAX_HANDLE_BYTES: '0' }),
    ).toEqual(['HCP_VAULT_MAX_HANDLE_BYTES', 'HCP_VAULT_PORT']);
    // Above the gRPC message bound a payload could never be Put or resolved.
    expect(badVariables({ ...base, HCP_VAULT_MAX_HANDLE_BYTES: String(8 * 1024 * 1024) })).toEqual([
      'HCP_VAULT_MAX_HANDLE_BYTES',
    ]);
    expect(
      badVariables({
        ...base,
        HCP_VAULT_MAX_HANDLE_BYTES: '2000',
        HCP_VAULT_MAX_PRINCIPAL_BYTES: '1000',
      }),
    ).toEqual(['HCP_VAULT_MAX_PRINCIPAL_BYTES']);
    expect(
      badVariables({ ...base, HCP_VAULT_DEFAULT_TTL_MS: '5000', HCP_VAULT_MAX_TTL_MS: '2000' }),
    ).toEqual(['HCP_VAULT_MAX_TTL_MS']);
    // Handle lifetimes are bounded settings: 1 s to 7 days.
    expect(badVariables({ ...base, HCP_VAULT_DEFAULT_TTL_MS: '999' })).toEqual([
      'HCP_VAULT_DEFAULT_TTL_MS',
    ]);
    expect(badVariables({ ...base, HCP_VAULT_MAX_TTL_MS: String(8 * 24 * 3_600_000) })).toEqual([
      'HCP_VAULT_MAX_TTL_MS',
    ]);
    expect(
      loadHandleVaultConfig({
        ...base,
        HCP_VAULT_DEFAULT_TTL_MS: '1000',
        HCP_VAULT_MAX_TTL_MS: '604800000',
      }).HCP_VAULT_MAX_TTL_MS,
    ).toBe(604_800_000);
    expect(badVariables({ ...base, HCP_DATABASE: 'postgres' })).toEqual(['HCP_DATABASE_URL']);
  });
});
