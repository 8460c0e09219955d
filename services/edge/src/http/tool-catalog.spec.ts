import type { Capability, Grant } from '@hcp/core';
import type { ProviderListing } from '../providers/provider-registry';
import { ListingCache, someGrantCovers } from './tool-catalog';

const NOW = 1_000_000;

function grant(capabilities: string[], extra: Partial<Grant> = {}): Grant {
  return {
    id: 'grt-1',
    principalId: 'alice',
    capabilities,
    resourcePatterns: [],
    scopes: [],
    createdAt: 1,
    ...extra,
  };
}

function cap(id: string): Pick<Capability, 'id' | 'provider'> {
  return { id, provider: id.slice(0, Math.max(0, id.indexOf('/'))) };
}

describe('someGrantCovers (tools/list discovery filter, the policy rules)', () => {
  it.each<[string, Grant[], string]>([
    ['the exact capability id', [grant(['fs/read_file'])], 'fs/read_file'],
    ['the provider wildcard', [grant(['fs/*'])], 'fs/write_file'],
    ['one of several grants', [grant(['web/fetch']), grant(['fs/read_file'])], 'fs/read_file'],
    ['a grant expiring later', [grant(['fs/read_file'], { expiresAt: NOW + 1 })], 'fs/read_file'],
    [
      'a grant revoked only in the future',
      [grant(['fs/read_file'], { revokedAt: NOW + 1 })],
      'fs/read_file',
    ],
  ])('shows a tool covered by %s', (_l, grants, id) => {
    expect(someGrantCovers(grants, cap(id), NOW)).toBe(true);
  });

  it.each<[string, Grant[], string]>([
    ['no grants', [], 'fs/read_file'],
    ['another capability', [grant(['fs/read_file'])], 'fs/write_file'],
    ['another provider wildcard', [grant(['web/*'])], 'fs/read_file'],
    ['a sibling-prefix provider wildcard', [grant(['f/*'])], 'fs/read_file'],
    ['a prefix of the provider id', [grant(['fs/*'])], 'fsx/read_file'],
    ['an expired grant', [grant(['fs/read_file'], { expiresAt: NOW })], 'fs/read_file'],
    ['a revoked grant', [grant(['fs/*'], { revokedAt: NOW - 1 })], 'fs/read_file'],
    ['a bare `*`', [grant(['*'])], 'fs/read_file'],
  ])('hides a tool when there is only %s', (_l, grants, id) => {
    expect(someGrantCovers(grants, cap(id), NOW)).toBe(false);
  });
});

describe('ListingCache staleness (I1)', () => {
  const listing = (providerId: string, digest: string): ProviderListing => ({
    providerId,
    capabilities: [
      {
        capabilityId: `${providerId}/t`,
        digest,
        tool: { name: 't', inputSchema: { type: 'object' } },
      },
    ],
    rejected: [],
  });

  it('hides a stale provider from get/all at once and keeps the others', () => {
    const cache = new ListingCache();
    cache.update(listing('a', 'd1'));
    cache.update(listing('b', 'd2'));
    cache.markStale('a');
    expect(cache.get('a/t')).toBeUndefined();
    expect(cache.get('b/t')?.digest).toBe('d2');
    expect(cache.all().map((l) => l.capabilityId)).toEqual(['b/t']);
    // The baselines still see the last listing.
    expect(cache.listed('a/t')?.digest).toBe('d1');
    expect(cache.allListed()).toHaveLength(2);
  });

  it('is cleared by a listing requested after the mark, not by one requested before it', () => {
    const cache = new ListingCache();
    cache.update(listing('a', 'd1'));
    const before = cache.epoch('a');
    cache.markStale('a');
    cache.update(listing('a', 'd1'), before);
    expect(cache.isStale('a')).toBe(true);
    const after = cache.epoch('a');
    cache.update(listing('a', 'd3'), after);
    expect(cache.isStale('a')).toBe(false);
    expect(cache.get('a/t')?.digest).toBe('d3');
  });
});
