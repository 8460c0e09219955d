import { createTokenVerifier, mintToken } from '@hcp/platform';
import { authenticateBearer, bearerChallenge, type AuthenticationResult } from './authenticate';

const issuer = 'https://issuer.test';
const audience = 'hcp-edge';
const hs256Secret = 'edge-auth-test-secret-of-32-bytes-or-more';
const verifier = createTokenVerifier({ issuer, audience, hs256Secret });
const ALICE = { id: 'alice', kind: 'agent' as const, displayName: 'Alice' };
const mint = (
  over: { issuer?: string; audience?: string; hs256Secret?: string; ttlSec?: number } = {},
) => mintToken(ALICE, { issuer, audience, hs256Secret, ...over });

function refusal(r: AuthenticationResult) {
  if (r.ok) throw new Error('expected a refusal');
  return r.error;
}

describe('authenticateBearer', () => {
  it('turns a valid bearer token into its principal', async () => {
    await expect(authenticateBearer(`Bearer ${await mint()}`, verifier)).resolves.toEqual({
      ok: true,
      principal: ALICE,
    });
  });

  it('accepts the scheme in any case and a single-element header array', async () => {
    const token = await mint();
    await expect(authenticateBearer(`bearer ${token}`, verifier)).resolves.toMatchObject({
      ok: true,
    });
    await expect(authenticateBearer([`Bearer ${token}`], verifier)).resolves.toMatchObject({
      ok: true,
    });
  });

  it.each<[string, () => Promise<string | string[] | undefined>, RegExp]>([
    ['expired', async () => `Bearer ${await mint({ ttlSec: -120 })}`, /expired/],
    [
      'from another issuer',
      async () => `Bearer ${await mint({ issuer: 'https://evil.test' })}`,
      /issuer/,
    ],
    ['for another audience', async () => `Bearer ${await mint({ audience: 'other' })}`, /audience/],
    [
      'signed with another key',
      async () => `Bearer ${await mint({ hs256Secret: 'another-secret-that-is-32-bytes-long!!' })}`,
      /signature/,
    ],
    ['garbage', () => Promise.resolve('Bearer not.a.jwt'), /malformed/],
    [
      'of another scheme',
      () => Promise.resolve(`Basic ${Buffer.from('a:b').toString('base64')}`),
      /not a bearer/,
    ],
    ['repeated', async () => [`Bearer ${await mint()}`, `Bearer ${await mint()}`], /more than one/],
  ])('refuses a credential that is %s with invalid_token', async (_, header, why) => {
    const e = refusal(await authenticateBearer(await header(), verifier));
    expect(e).toMatchObject({
      reason: 'PRINCIPAL_UNAUTHENTICATED',
      httpStatus: 401,
      jsonRpcCode: -32001,
    });
    expect(e.message).toMatch(why);
    expect(e.wwwAuthenticate).toMatch(
      /^Bearer realm="hcp", error="invalid_token", error_description="[^"]+"$/,
    );
  });

  it.each([undefined, '', '   '])(
    'challenges a request without credentials (%j) without an error code',
    async (h) => {
      const e = refusal(await authenticateBearer(h, verifier));
      expect(e).toMatchObject({ reason: 'PRINCIPAL_UNAUTHENTICATED', httpStatus: 401 });
      expect(e.wwwAuthenticate).toBe('Bearer realm="hcp"');
    },
  );

  it('never echoes the token in the message or challenge', async () => {
    const token = await mint({ audience: 'other' });
    const e = refusal(await authenticateBearer(`Bearer ${token}`, verifier));
    expect(e.message).not.toContain(token);
    expect(e.wwwAuthenticate).not.toContain(token.split('.')[1]!);
  });

  it('names the protected-resource metadata in the challenge when configured', async () => {
    const e = refusal(
      await authenticateBearer(undefined, verifier, {
        realm: 'edge',
        resourceMetadataUrl: 'https://edge.test/.well-known/oauth-protected-resource',
      }),
    );
    expect(e.wwwAuthenticate).toBe(
      'Bearer realm="edge", resource_metadata="https://edge.test/.well-known/oauth-protected-resource"',
    );
  });

  it('keeps the challenge a valid quoted-string whatever the description holds', () => {
    expect(bearerChallenge({}, { description: 'bad "claim"\\\n' })).toBe(
      'Bearer realm="hcp", error="invalid_token", error_description="bad claim"',
    );
  });
});
