import { ConfigError } from '@hcp/platform';
import { databaseConfigOf, loadGrantStoreConfig } from './config';

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
});
