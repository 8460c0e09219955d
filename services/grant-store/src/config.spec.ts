import { ConfigError } from '@hcp/platform';
import {
  approvalLifetimesOf,
  databaseConfigOf,
  loadGrantStoreConfig,
  verifierOptionsOf,
} from './config';

describe('grant-store configuration', () => {
  it('defaults the port and host and selects PostgreSQL from HCP_DATABASE_URL', () => {
    const config = loadGrantStoreConfig({ HCP_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/hcp' });
    expect(config).toMatchObject({
      HCP_GRANT_STORE_HOST: '127.0.0.1',
      HCP_GRANT_STORE_PORT: 50051,
      HCP_GRANT_STORE_DRAIN_MS: 10_000,
    });
    expect(config.HCP_NATS_URL).toBeUndefined();
    expect(databaseConfigOf(config)).toEqual({
      kind: 'postgres',
      url: 'postgres://u:p@127.0.0.1:5432/hcp',
    });
  });

  it('selects PGlite, in memory or in a directory', () => {
    expect(databaseConfigOf(loadGrantStoreConfig({ HCP_DATABASE: 'pglite' }))).toEqual({
      kind: 'pglite',
    });
    expect(
      databaseConfigOf(loadGrantStoreConfig({ HCP_DATABASE: 'pglite', HCP_PGLITE_DIR: '/tmp/gs' })),
    ).toEqual({ kind: 'pglite', dataDir: '/tmp/gs' });
  });

  it('names every bad variable', () => {
    let err: unknown;
    try {
      loadGrantStoreConfig({ HCP_GRANT_STORE_PORT: '70000', HCP_DATABASE: 'mysql' });
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.variable).sort()).toEqual([
      'HCP_DATABASE',
      'HCP_GRANT_STORE_PORT',
    ]);
    expect(() => loadGrantStoreConfig({})).toThrow(/HCP_DATABASE_URL: required/);
    expect(() => loadGrantStoreConfig({ HCP_DATABASE_URL: 'mysql://x' })).toThrow(
      /HCP_DATABASE_URL: must be a postgres/,
    );
  });

  it('takes approval lifetimes as bounded settings (default 15 min, at most 24 h)', () => {
    const db = { HCP_DATABASE: 'pglite' };
    expect(approvalLifetimesOf(loadGrantStoreConfig(db))).toEqual({
      defaultTtlMs: 15 * 60_000,
      maxTtlMs: 24 * 3_600_000,
    });
    const set = { ...db, HCP_APPROVAL_DEFAULT_TTL_MS: '60000', HCP_APPROVAL_MAX_TTL_MS: '3600000' };
    expect(approvalLifetimesOf(loadGrantStoreConfig(set))).toEqual({
      defaultTtlMs: 60_000,
      maxTtlMs: 3_600_000,
    });
    expect(() => loadGrantStoreConfig({ ...db, HCP_APPROVAL_DEFAULT_TTL_MS: '999' })).toThrow(
      /HCP_APPROVAL_DEFAULT_TTL_MS/,
    );
    expect(() =>
      loadGrantStoreConfig({ ...db, HCP_APPROVAL_MAX_TTL_MS: String(8 * 24 * 3_600_000) }),
    ).toThrow(/HCP_APPROVAL_MAX_TTL_MS/);
    expect(() =>
      loadGrantStoreConfig({
        ...db,
        HCP_APPROVAL_DEFAULT_TTL_MS: '7200000',
        HCP_APPROVAL_MAX_TTL_MS: '3600000',
      }),
    ).toThrow(/HCP_APPROVAL_MAX_TTL_MS: must be at least HCP_APPROVAL_DEFAULT_TTL_MS/);
  });

  describe('operator token verification', () => {
    const db = { HCP_DATABASE: 'pglite' };
    const auth = { HCP_AUTH_ISSUER: 'https://issuer', HCP_AUTH_AUDIENCE: 'hcp' };
    const problems = (env: Record<string, string>) => {
      try {
        loadGrantStoreConfig(env);
        return [];
      } catch (e: unknown) {
        return (e as ConfigError).problems.map((p) => p.variable).sort();
      }
    };

    it('selects a verifier when one key source is set', () => {
      const config = loadGrantStoreConfig({
        ...db,
        ...auth,
        HCP_AUTH_HS256_SECRET: 'x'.repeat(32),
      });
      expect(verifierOptionsOf(config)).toEqual({
        issuer: 'https://issuer',
        audience: 'hcp',
        hs256Secret: 'x'.repeat(32),
      });
      expect(
        verifierOptionsOf(
          loadGrantStoreConfig({ ...db, ...auth, HCP_AUTH_JWKS_URL: 'https://issuer/jwks' }),
        ),
      ).toEqual({ issuer: 'https://issuer', audience: 'hcp', jwksUrl: 'https://issuer/jwks' });
    });

    it('has no verifier (the dev-only metadata path) when no key source is set', () => {
      expect(verifierOptionsOf(loadGrantStoreConfig(db))).toBeUndefined();
      expect(verifierOptionsOf(loadGrantStoreConfig({ ...db, ...auth }))).toBeUndefined();
    });

    it('refuses two key sources, a short secret, and a key without issuer or audience', () => {
      expect(
        problems({
          ...db,
          ...auth,
          HCP_AUTH_HS256_SECRET: 'x'.repeat(32),
          HCP_AUTH_JWKS_URL: 'https://issuer/jwks',
        }),
      ).toEqual(['HCP_AUTH_HS256_SECRET']);
      expect(problems({ ...db, ...auth, HCP_AUTH_HS256_SECRET: 'short' })).toEqual([
        'HCP_AUTH_HS256_SECRET',
      ]);
      expect(problems({ ...db, HCP_AUTH_HS256_SECRET: 'x'.repeat(32) })).toEqual([
        'HCP_AUTH_AUDIENCE',
        'HCP_AUTH_ISSUER',
      ]);
    });
  });
});
