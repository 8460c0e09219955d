import type { Capability, Grant } from '@hcp/core';
import { someGrantCovers } from './tool-catalog';

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
