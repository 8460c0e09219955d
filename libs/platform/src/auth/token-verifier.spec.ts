import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HcpError } from '@hcp/core';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { bearerToken, createTokenVerifier, mintToken, type TokenVerifier } from './token-verifier';

const issuer = 'https://issuer.test';
const audience = 'hcp';
const secret = 'test-secret-that-is-at-least-32-bytes-long';
const now = () => Math.floor(Date.now() / 1000);

/** The reason and message a rejected verification carries. */
async function refusal(p: Promise<unknown>): Promise<{ reason: string; message: string }> {
  try {
    await p;
  } catch (err: unknown) {
    if (err instanceof HcpError) return { reason: err.reason, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

function signed(
  claims: Record<string, unknown>,
  key: KeyLike | Uint8Array,
  alg: string,
  set: (j: SignJWT) => SignJWT = (j) => j,
): Promise<string> {
  return set(
    new SignJWT(claims)
      .setProtectedHeader({ alg })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(now() + 60),
  ).sign(key);
}

describe('token verifier (HS256)', () => {
  const verifier = createTokenVerifier({ issuer, audience, hs256Secret: secret });
  const mint = (ttlSec?: number) =>
    mintToken(
      { id: 'op-1', kind: 'operator', displayName: 'Ops' },
      {
        issuer,
        audience,
        hs256Secret: secret,
        ...(ttlSec !== undefined ? { ttlSec } : {}),
      },
    );

  it('accepts a valid token and maps sub, hcp_kind and name to the principal', async () => {
    await expect(verifier.verify(await mint())).resolves.toEqual({
      id: 'op-1',
      kind: 'operator',
      displayName: 'Ops',
    });
  });

  it('reads a token without hcp_kind as an agent', async () => {
    const t = await signed({}, new TextEncoder().encode(secret), 'HS256', (j) =>
      j.setSubject('a-1'),
    );
    await expect(verifier.verify(t)).resolves.toEqual({ id: 'a-1', kind: 'agent' });
  });

  it.each<[string, () => Promise<string>, RegExp]>([
    ['expired', () => mint(-120), /expired/],
    [
      'wrong issuer',
      () =>
        mintToken({ id: 'x', kind: 'operator' }, { issuer: 'evil', audience, hs256Secret: secret }),
      /issuer/,
    ],
    [
      'wrong audience',
      () =>
        mintToken(
          { id: 'x', kind: 'operator' },
          { issuer, audience: 'other', hs256Secret: secret },
        ),
      /audience/,
    ],
    [
      'wrong signature',
      () =>
        mintToken(
          { id: 'x', kind: 'operator' },
          { issuer, audience, hs256Secret: 'another-secret-of-at-least-32-bytes!!' },
        ),
      /signature/,
    ],
    [
      'missing sub',
      () => signed({ hcp_kind: 'operator' }, new TextEncoder().encode(secret), 'HS256'),
      /sub/,
    ],
    [
      'unknown kind',
      () =>
        signed({ hcp_kind: 'root' }, new TextEncoder().encode(secret), 'HS256', (j) =>
          j.setSubject('x'),
        ),
      /hcp_kind/,
    ],
    ['garbage', () => Promise.resolve('not.a.jwt'), /malformed/],
    ['empty', () => Promise.resolve(''), /no token/],
    [
      'unsigned (alg none)',
      () =>
        Promise.resolve(
          `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
            JSON.stringify({ sub: 'x', iss: issuer, aud: audience, exp: now() + 60 }),
          ).toString('base64url')}.`,
        ),
      /./,
    ],
  ])('refuses a token that is %s with PRINCIPAL_UNAUTHENTICATED', async (_, make, why) => {
    const r = await refusal(verifier.verify(await make()));
    expect(r.reason).toBe('PRINCIPAL_UNAUTHENTICATED');
    expect(r.message).toMatch(why);
  });

  describe('subjects with characters no identifier has', () => {
    const withSub = (sub: string) =>
      signed({ hcp_kind: 'operator' }, new TextEncoder().encode(secret), 'HS256', (j) =>
        j.setSubject(sub),
      );

    it.each([
      ['NUL', 'op\u0000admin'],
      ['a newline (log forging)', 'op-1\nkind=operator'],
      ['ESC', 'op\u001b[31m'],
      ['DEL', 'op\u007f'],
      ['a C1 control (NEL)', 'op\u0085'],
      ['a lone high surrogate', 'op\ud800'],
      ['a lone low surrogate', '\udc00op'],
    ])('refuses %s in sub with PRINCIPAL_UNAUTHENTICATED', async (_label, sub) => {
      expect(await refusal(verifier.verify(await withSub(sub)))).toEqual({
        reason: 'PRINCIPAL_UNAUTHENTICATED',
        message: 'token subject contains a control character or a lone surrogate',
      });
    });

    it.each([
      ['non-ASCII letters', 'opérateur-Zoë'],
      ['another script', 'агент-7'],
      ['a surrogate pair (astral letter)', 'op-\u{1D49C}'],
      ['spaces and punctuation', 'svc:edge/eu-1 (blue)'],
    ])('the allowed neighbour: accepts %s', async (_label, sub) => {
      await expect(verifier.verify(await withSub(sub))).resolves.toMatchObject({
        id: sub,
        kind: 'operator',
      });
    });
  });

  it('refuses a misconfiguration at construction', () => {
    expect(() => createTokenVerifier({ issuer, audience })).toThrow(/exactly one/);
    expect(() =>
      createTokenVerifier({ issuer, audience, hs256Secret: secret, jwksUrl: 'http://x' }),
    ).toThrow(/exactly one/);
    expect(() => createTokenVerifier({ issuer, audience, hs256Secret: 'short' })).toThrow(
      /32 bytes/,
    );
  });

  it('extracts a bearer token from an Authorization header', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(() => bearerToken(undefined)).toThrow(HcpError);
    expect(() => bearerToken('Basic abc')).toThrow(HcpError);
  });
});

describe('token verifier (public key and JWKS)', () => {
  let privateKey: KeyLike;
  let publicKey: KeyLike;
  let server: Server;
  let jwksUrl: string;

  beforeAll(async () => {
    ({ privateKey, publicKey } = await generateKeyPair('ES256'));
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((_, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const sign = (key: KeyLike) =>
    signed({ hcp_kind: 'service' }, key, 'ES256', (j) =>
      j.setSubject('svc-1').setProtectedHeader({ alg: 'ES256', kid: 'k1' }),
    );

  it('verifies with an SPKI PEM public key', async () => {
    const verifier = createTokenVerifier({
      issuer,
      audience,
      publicKeyPem: await exportSPKI(publicKey),
    });
    await expect(verifier.verify(await sign(privateKey))).resolves.toEqual({
      id: 'svc-1',
      kind: 'service',
    });
    const other = await generateKeyPair('ES256');
    expect((await refusal(verifier.verify(await sign(other.privateKey)))).message).toMatch(
      /signature/,
    );
  });

  it('verifies through a JWKS URL', async () => {
    const verifier: TokenVerifier = createTokenVerifier({ issuer, audience, jwksUrl });
    await expect(verifier.verify(await sign(privateKey))).resolves.toEqual({
      id: 'svc-1',
      kind: 'service',
    });
    // An HS256 token must not pass against an asymmetric configuration.
    const hs = await mintToken(
      { id: 'x', kind: 'operator' },
      { issuer, audience, hs256Secret: secret },
    );
    expect((await refusal(verifier.verify(hs))).reason).toBe('PRINCIPAL_UNAUTHENTICATED');
  });
});
