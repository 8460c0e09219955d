import { CAPABILITIES, GRANTS, NOW } from '@hcp/policy/testing';
import { PolicyCache, PolicyUnavailableError } from './policy-cache';
import { MemoryGrantSource } from './testing/memory-grant-source';

function setup(maxStalenessMs = 1000) {
  let now = NOW;
  const source = new MemoryGrantSource(GRANTS, CAPABILITIES);
  const cache = new PolicyCache(source, { maxStalenessMs, clock: () => now });
  return { source, cache, advance: (ms: number) => (now += ms) };
}

describe('PolicyCache', () => {
  it('serves a fresh entry from cache and refetches once it is past the bound', async () => {
    const { source, cache, advance } = setup(1000);
    await cache.contextFor('alice');
    await cache.contextFor('alice');
    expect(source.calls.principal).toBe(1);
    advance(999);
    await cache.contextFor('alice');
    expect(source.calls.principal).toBe(1);
    advance(1);
    await cache.contextFor('alice');
    expect(source.calls.principal).toBe(2);
  });

  it('fails closed when the bound has passed and grant-store is unreachable, and recovers after', async () => {
    const { source, cache, advance } = setup(1000);
    await cache.contextFor('alice');
    source.failing = true;
    advance(500);
    await expect(cache.contextFor('alice')).resolves.toBeDefined(); // still within the bound
    advance(600);
    await expect(cache.contextFor('alice')).rejects.toBeInstanceOf(PolicyUnavailableError);
    source.failing = false;
    await expect(cache.contextFor('alice')).resolves.toBeDefined();
  });

  it('drops a principal on invalidation so the next decision sees the revocation', async () => {
    const { source, cache } = setup(60_000);
    const before = await cache.contextFor('alice');
    expect(before.grants.some((g) => g.id === 'grt_alice_read')).toBe(true);
    const rev = source.revoke('grt_alice_read', NOW);
    cache.invalidatePrincipal('alice', rev);
    const after = await cache.contextFor('alice');
    expect(after.grants.some((g) => g.id === 'grt_alice_read')).toBe(false);
    // Bob's entry is untouched by Alice's invalidation.
    await cache.contextFor('bob');
    cache.invalidatePrincipal('alice', rev + 1);
    const calls = source.calls.principal;
    await cache.contextFor('bob');
    expect(source.calls.principal).toBe(calls);
  });

  it('never caches a snapshot read before an invalidation that arrived while it was in flight', async () => {
    const { source, cache } = setup(60_000);
    let open!: () => void;
    source.gate = new Promise<void>((r) => (open = r));
    const inflight = cache.contextFor('alice'); // reads the pre-revoke snapshot, then waits
    await Promise.resolve();
    const rev = source.revoke('grt_alice_read', NOW);
    cache.invalidatePrincipal('alice', rev); // the event arrives while the fetch is in flight
    source.gate = undefined;
    // A decision that starts after the event must not join the old fetch.
    const fresh = await cache.contextFor('alice');
    expect(fresh.grants.some((g) => g.id === 'grt_alice_read')).toBe(false);
    open();
    await expect(inflight).rejects.toBeInstanceOf(PolicyUnavailableError); // revision below the announced one
    // And the stale snapshot was not written into the cache.
    const again = await cache.contextFor('alice');
    expect(again.grants.some((g) => g.id === 'grt_alice_read')).toBe(false);
    expect(cache.stats.staleSnapshots).toBe(1);
  });

  it('refuses a snapshot whose revision is older than one already announced', async () => {
    const { source, cache } = setup();
    cache.invalidatePrincipal('alice', 5); // event seen, but grant-store still serves revision 0
    await expect(cache.contextFor('alice')).rejects.toThrow(/older than announced 5/);
    source.revisions.set('alice', 5);
    await expect(cache.contextFor('alice')).resolves.toBeDefined();
  });

  it('shares one fetch between concurrent misses', async () => {
    const { source, cache } = setup();
    await Promise.all([
      cache.contextFor('alice'),
      cache.contextFor('alice'),
      cache.contextFor('alice'),
    ]);
    expect(source.calls.principal).toBe(1);
  });

  it('drops everything when the bus reports a gap', async () => {
    const { source, cache } = setup(60_000);
    await cache.contextFor('alice');
    await cache.contextFor('bob');
    cache.invalidateAll('bus reconnected');
    expect(cache.size).toBe(0);
    await cache.contextFor('alice');
    expect(source.calls.principal).toBe(3);
    expect(source.calls.manifest).toBe(2);
  });

  it('invalidates the manifest on a manifest change', async () => {
    const { source, cache } = setup(60_000);
    await cache.contextFor('alice');
    source.capabilities = source.capabilities.filter((c) => c.id !== 'fs/read_file');
    source.manifestRevision = 2;
    cache.invalidateManifest(2);
    const ctx = await cache.contextFor('alice');
    expect(ctx.capabilities.has('fs/read_file')).toBe(false);
  });

  it('keeps at most maxPrincipals entries, dropping the least recently used', async () => {
    const source = new MemoryGrantSource(GRANTS, CAPABILITIES);
    const cache = new PolicyCache(source, {
      maxStalenessMs: 60_000,
      maxPrincipals: 2,
      clock: () => NOW,
    });
    await cache.contextFor('a');
    await cache.contextFor('b');
    await cache.contextFor('a');
    await cache.contextFor('c');
    expect(cache.size).toBe(2);
    const calls = source.calls.principal;
    await cache.contextFor('a'); // still cached (recently used)
    expect(source.calls.principal).toBe(calls);
    await cache.contextFor('b'); // evicted
    expect(source.calls.principal).toBe(calls + 1);
  });
});
