import fc from 'fast-check';
import type { CanonicalResource, ResourcePattern } from '@hcp/core';
import { pathWithin, patternMatches } from '@hcp/policy';

describe('pathWithin (segment-boundary prefix)', () => {
  it.each([
    ['/data/app', '/data/app', true],
    ['/data/app/x', '/data/app', true],
    ['/data/app/x', '/data/app/', true],
    ['/data/app_evil', '/data/app', false],
    ['/data/app_evil/x', '/data/app', false],
    ['/data/ap', '/data/app', false],
    ['/data', '/data/app', false],
    ['/anything', '/', true],
    ['relative/x', '/data', false],
    ['/data/x', '', false],
  ])('%s within %s -> %s', (p, prefix, want) => {
    expect(pathWithin(p, prefix)).toBe(want);
  });

  it('never admits a path whose segments do not start with the prefix segments', () => {
    const seg = fc.stringMatching(/^[a-z_.]{1,6}$/);
    fc.assert(
      fc.property(
        fc.array(seg, { minLength: 1, maxLength: 4 }),
        fc.array(seg, { minLength: 1, maxLength: 5 }),
        (pre, p) => {
          const prefix = '/' + pre.join('/');
          const candidate = '/' + p.join('/');
          const bySegments = pre.every((s, i) => p[i] === s);
          expect(pathWithin(candidate, prefix)).toBe(bySegments);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('host_set patterns', () => {
  const url = (host: string, addresses: string[] = ['93.184.216.34']): CanonicalResource => ({
    kind: 'url',
    raw: `https://${host}/`,
    canonical: `https://${host}/`,
    host,
    addresses,
  });
  const hosts = (...h: string[]): ResourcePattern => ({ kind: 'host_set', hosts: h, cidrs: [] });
  const cidrs = (...c: string[]): ResourcePattern => ({ kind: 'host_set', hosts: [], cidrs: c });

  it('matches exact names case-insensitively, and wildcards only below the apex', () => {
    expect(patternMatches(hosts('API.example.com'), url('api.example.com'))).toBe(true);
    expect(patternMatches(hosts('api.example.com'), url('api.example.com.evil.net'))).toBe(false);
    expect(patternMatches(hosts('*.example.com'), url('a.b.example.com'))).toBe(true);
    expect(patternMatches(hosts('*.example.com'), url('example.com'))).toBe(false);
    expect(patternMatches(hosts('*.example.com'), url('badexample.com'))).toBe(false);
  });

  it('requires every resolved address inside the CIDR set', () => {
    expect(patternMatches(cidrs('203.0.113.0/24'), url('x.test', ['203.0.113.7']))).toBe(true);
    expect(
      patternMatches(cidrs('203.0.113.0/24'), url('x.test', ['203.0.113.7', '198.51.100.1'])),
    ).toBe(false);
    expect(patternMatches(cidrs('2001:db8::/32'), url('x.test', ['2001:db8::1']))).toBe(true);
    expect(patternMatches(cidrs('203.0.113.0/24'), url('x.test', []))).toBe(false);
  });

  it("covers only the scheme's default port unless the pattern lists ports", () => {
    const at = (href: string, over: Partial<CanonicalResource> = {}): CanonicalResource => ({
      kind: 'url',
      raw: href,
      canonical: href,
      host: new URL(href).hostname,
      addresses: ['93.184.216.34'],
      ...over,
    });
    const plain = hosts('example.org');
    expect(patternMatches(plain, at('https://example.org/'))).toBe(true);
    expect(patternMatches(plain, at('http://example.org/'))).toBe(true);
    // A non-web port on an allowed host is not the host's web service.
    expect(patternMatches(plain, at('http://example.org:18080/'))).toBe(false);
    expect(patternMatches(plain, at('https://example.org:80/'))).toBe(false);
    // The canonicaliser's fields win over the text (and are what it sets in production).
    expect(patternMatches(plain, at('https://example.org/', { scheme: 'https', port: 8443 }))).toBe(
      false,
    );
    const tls8443: ResourcePattern = {
      kind: 'host_set',
      hosts: ['example.org'],
      cidrs: [],
      schemes: ['https'],
      ports: [8443],
    };
    expect(patternMatches(tls8443, at('https://example.org:8443/'))).toBe(true);
    expect(patternMatches(tls8443, at('http://example.org:8443/'))).toBe(false);
    expect(patternMatches(tls8443, at('https://example.org/'))).toBe(false);
    // A scheme with no default port and none listed matches nothing (fail closed).
    const ftp: ResourcePattern = { ...plain, schemes: ['ftp'] } as ResourcePattern;
    expect(patternMatches(ftp, at('ftp://example.org/'))).toBe(false);
    // The benchmark-only ablation turns the rule off, and only it.
    expect(patternMatches(plain, at('http://example.org:18080/'), true)).toBe(true);
  });

  it('treats a malformed CIDR as matching nothing', () => {
    expect(
      patternMatches(cidrs('203.0.113.0/99', 'not-a-cidr'), url('x.test', ['203.0.113.7'])),
    ).toBe(false);
  });

  it('never matches a pattern against a resource of another kind', () => {
    const idRes: CanonicalResource = { kind: 'id', raw: '/data/app', canonical: '/data/app' };
    expect(patternMatches({ kind: 'path_prefix', prefix: '/data/app' }, idRes)).toBe(false);
    expect(patternMatches({ kind: 'exact_id', id: '/data/app' }, idRes)).toBe(true);
  });
});
