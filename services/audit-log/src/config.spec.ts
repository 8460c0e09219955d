import { ConfigError } from '@hcp/platform';
import { databaseConfigOf, loadAuditLogConfig, verifierOptionsOf } from './config';

const base = {
  HCP_DATABASE: 'pglite',
  HCP_NATS_URL: 'nats://127.0.0.1:4222',
  HCP_AUTH_ISSUER: 'https://issuer',
  HCP_AUTH_AUDIENCE: 'hcp-audit',
  HCP_AUTH_HS256_SECRET: 'x'.repeat(32),
};

describe('audit-log config', () => {
  it('reads defaults and selects PGlite and an HS256 verifier', () => {
    const c = loadAuditLogConfig(base);
    expect(c.HCP_AUDIT_HTTP_PORT).toBe(8082);
    expect(c.HCP_AUDIT_GRPC_PORT).toBeUndefined();
    expect(databaseConfigOf(c)).toEqual({ kind: 'pglite' });
    expect(verifierOptionsOf(c)).toEqual({
      issuer: 'https://issuer',
      audience: 'hcp-audit',
      hs256Secret: 'x'.repeat(32),
    });
  });

  it('names every bad variable', () => {
    const problems = (env: Record<string, string | undefined>) => {
      try {
        loadAuditLogConfig(env);
      } catch (err: unknown) {
        if (err instanceof ConfigError) return err.problems.map((p) => p.variable);
      }
      return [];
    };
    expect(problems({ ...base, HCP_DATABASE: undefined })).toEqual(['HCP_DATABASE_URL']);
    expect(problems({ ...base, HCP_AUTH_JWKS_URL: 'https://issuer/jwks' })).toEqual([
      'HCP_AUTH_HS256_SECRET',
    ]);
    expect(problems({ ...base, HCP_AUTH_HS256_SECRET: 'short' })).toContain(
      'HCP_AUTH_HS256_SECRET',
    );
    expect(problems({ ...base, HCP_AUTH_ISSUER: undefined, HCP_NATS_URL: undefined })).toEqual([
      'HCP_NATS_URL',
      'HCP_AUTH_ISSUER',
    ]);
  });
});
