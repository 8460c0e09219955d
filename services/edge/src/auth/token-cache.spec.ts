import { HcpError, type Principal } from '@hcp/core';
import { createTokenVerifier, mintToken, type TokenVerifier } from '@hcp/platform';
import { CachingTokenVerifier } from './token-cache';

const AUTH = {
  issuer: 'hcp-test',
  audience: 'hcp',
  hs256Secret: 'token-cache-spec-secret-0123456789abcdef',
};
const alice: Principal = { id: 'alice', kind: 'agent' };

/** The real verifier (no clock tolerance), counting how often it actually verifies. */
function counting(): TokenVerifier & { calls: string[] } {
  const real = createTokenVerifier({ ...AUTH, clockToleranceSec: 0 });
  const calls: string[] = [];
  return {
    calls,
    verify: (token) => {
      calls.push(token);
      return real.verify(token);
    },
  };
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof HcpError ? e.reason : String(e)),
  );

describe('CachingTokenVerifier', () => {
  it('verifies a token once and serves its principal from the cache until exp', async () => {
    const inner = counting();
    const cache = new CachingTokenVerifier(inner);
    const token = await mintToken(alice, AUTH);
    await expect(cache.verify(token)).resolves.toEqual(alice);
    await expect(cache.verify(token)).resolves.toEqual(alice);
    expect(inner.calls).toHaveLength(1);
  });

  it('refuses an expired token even when it is cached; a fresh token is served', async () => {
    const inner = counting();
    const cache = new CachingTokenVerifier(inner);
    const token = await mintToken(alice, { ...AUTH, ttlSec: 1 });
    await expect(cache.verify(token)).resolves.toEqual(alice);
    expect(cache.size).toBe(1);
    const exp = (
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
        exp: number;
      }
    ).exp;
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 20));
    // Past exp, with no tolerance added: the cache does not answer, the verifier refuses.
    await expect(refusal(cache.verify(token))).resolves.toBe('PRINCIPAL_UNAUTHENTICATED');
    expect(inner.calls).toHaveLength(2);
    // Neighbour: a fresh token of the same principal is served.
    await expect(cache.verify(await mintToken(alice, AUTH))).resolves.toEqual(alice);
  });

  it('does not serve an entry past exp by its own clock (no tolerance added)', async () => {
    const inner = counting();
    let now = Date.now();
    const cache = new CachingTokenVerifier(inner, { now: () => now });
    const token = await mintToken(alice, AUTH);
    const exp = (
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
        exp: number;
      }
    ).exp;
    await cache.verify(token);
    now = exp * 1000 - 1;
    await cache.verify(token);
    expect(inner.calls).toHaveLength(1); // the last millisecond before exp: from the cache
    now = exp * 1000;
    await cache.verify(token);
    expect(inner.calls).toHaveLength(2); // at exp: verified again
  });

  it('verifies a different token of the same principal on its own', async () => {
    const inner = counting();
    const cache = new CachingTokenVerifier(inner);
    const first = await mintToken(alice, AUTH);
    const second = await mintToken({ ...alice, displayName: 'Alice' }, AUTH);
    await cache.verify(first);
    await expect(cache.verify(second)).resolves.toEqual({ ...alice, displayName: 'Alice' });
    expect(inner.calls).toEqual([first, second]);
    // A token signed with another key for the same principal is refused, not served from the cache.
    const forged = await mintToken(alice, {
      ...AUTH,
      hs256Secret: 'another-secret-0123456789abcdef-xyz',
    });
    await expect(refusal(cache.verify(forged))).resolves.toBe('PRINCIPAL_UNAUTHENTICATED');
  });

  it('never caches a refused token: it is verified and refused every time', async () => {
    const inner = counting();
    const cache = new CachingTokenVerifier(inner);
    const bad = await mintToken(alice, { ...AUTH, audience: 'elsewhere' });
    await expect(refusal(cache.verify(bad))).resolves.toBe('PRINCIPAL_UNAUTHENTICATED');
    await expect(refusal(cache.verify(bad))).resolves.toBe('PRINCIPAL_UNAUTHENTICATED');
    expect(inner.calls).toHaveLength(2);
    expect(cache.size).toBe(0);
    // Neighbour: a good token is cached.
    await cache.verify(await mintToken(alice, AUTH));
    expect(cache.size).toBe(1);
  });

  it('keys entries by the SHA-256 of the token, never the token', async () => {
    const cache = new CachingTokenVerifier(counting());
    const token = await mintToken(alice, AUTH);
    await cache.verify(token);
    const keys = [...(cache as unknown as { entries: Map<string, unknown> }).entries.keys()];
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toContain(token.split('.')[2]!);
    expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('is bounded: the least recently used entry goes first', async () => {
    const inner = counting();
    const cache = new CachingTokenVerifier(inner, { maxEntries: 2 });
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((id) => mintToken({ id, kind: 'agent' }, AUTH)),
    );
    await cache.verify(a!);
    await cache.verify(b!);
    await cache.verify(a!); // a is now the most recently used
    await cache.verify(c!); // evicts b
    expect(cache.size).toBe(2);
    inner.calls.length = 0;
    await cache.verify(a!);
    await cache.verify(c!);
    expect(inner.calls).toEqual([]);
    await cache.verify(b!);
    expect(inner.calls).toEqual([b]);
  });

  it('with a key-set bound (JWKS), an entry lives no longer than that bound', async () => {
    const inner = counting();
    let now = Date.now();
    const cache = new CachingTokenVerifier(inner, { maxEntryMs: 1000, now: () => now });
    const token = await mintToken(alice, AUTH); // exp an hour away
    await cache.verify(token);
    now += 999;
    await cache.verify(token);
    expect(inner.calls).toHaveLength(1);
    now += 1;
    await cache.verify(token);
    expect(inner.calls).toHaveLength(2);
  });
});
