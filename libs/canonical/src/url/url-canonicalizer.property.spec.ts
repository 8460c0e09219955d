import fc from 'fast-check';
import { createUrlCanonicalizer } from './url-canonicalizer';
import type { UrlCanonicalizer } from './url-canonicalizer';

// --- independent oracle -------------------------------------------------------
// Special-purpose ranges written out here with plain integer arithmetic, not
// through ipaddr.js, so the property checks the library-based classifier
// against a second opinion (IANA IPv4/IPv6 special-purpose registries).

type V4Range = readonly [string, number];

const V4_SPECIAL: readonly V4Range[] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.31.196.0', 24],
  ['192.52.193.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['192.175.48.0', 24],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];

// The ranges an SSRF guard must never let through; the property generates inside each.
const V4_PRIVATE: readonly V4Range[] = [
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['169.254.0.0', 16],
  ['0.0.0.0', 8],
  ['100.64.0.0', 10],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  ['192.0.2.0', 24],
  ['198.18.0.0', 15],
];

function v4ToInt(dotted: string): number {
  return dotted.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function intToV4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function inV4Range(n: number, [base, bits]: V4Range): boolean {
  const size = 2 ** (32 - bits);
  const start = v4ToInt(base);
  return n >= start && n < start + size;
}

function isSpecialV4(n: number): boolean {
  return V4_SPECIAL.some((r) => inV4Range(n, r));
}

// IPv6: global unicast is 2000::/3; inside it these prefixes are special.
function isSpecialGlobalV6(hextets: readonly number[]): boolean {
  const [h0 = 0, h1 = 0, h2 = 0] = hextets;
  if (h0 === 0x2001 && h1 < 0x200) return true; // 2001::/23 IETF protocol assignments
  if (h0 === 0x2001 && h1 === 0xdb8) return true; // documentation
  if (h0 === 0x2002) return true; // 6to4
  if (h0 === 0x2620 && h1 === 0x4f && h2 === 0x8000) return true; // AS112
  if (h0 === 0x3fff && h1 < 0x1000) return true; // 3fff::/20 documentation
  return false;
}

// --- generators ---------------------------------------------------------------

const privateV4 = fc
  .constantFrom(...V4_PRIVATE)
  .chain(([base, bits]) =>
    fc.integer({ min: 0, max: 2 ** (32 - bits) - 1 }).map((offset) => v4ToInt(base) + offset),
  );

/** Every spelling WHATWG (and inet_aton) reads as the same IPv4 address. */
function encodings(n: number): string[] {
  const o = intToV4(n)
    .split('.')
    .map((p) => Number(p));
  const [a = 0, b = 0, c = 0, d = 0] = o;
  return [
    intToV4(n),
    String(n),
    `0x${n.toString(16)}`,
    `0x${n.toString(16).toUpperCase()}`,
    o.map((p) => `0${p.toString(8)}`).join('.'),
    o.map((p) => `0x${p.toString(16)}`).join('.'),
    `${a}.${b * 65536 + c * 256 + d}`,
    `${a}.${b}.${c * 256 + d}`,
    `0x${a.toString(16)}.${b}.0${c.toString(8)}.${d}`,
    `${intToV4(n)}.`,
  ];
}

const hextet = fc.integer({ min: 0, max: 0xffff });

function v6(first: number, rest: readonly number[]): string {
  return [first, ...rest].map((h) => h.toString(16)).join(':');
}

const ulaV6 = fc
  .tuple(fc.integer({ min: 0xfc00, max: 0xfdff }), fc.array(hextet, { minLength: 7, maxLength: 7 }))
  .map(([h0, rest]) => v6(h0, rest));

const linkLocalV6 = fc
  .tuple(fc.integer({ min: 0xfe80, max: 0xfebf }), fc.array(hextet, { minLength: 7, maxLength: 7 }))
  .map(([h0, rest]) => v6(h0, rest));

const mappedV6 = fc
  .tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.boolean())
  .map(([n, dotted]) =>
    dotted
      ? `::ffff:${intToV4(n)}`
      : `::ffff:${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`,
  );

const publicV4 = fc
  .integer({ min: 0, max: 2 ** 32 - 1 })
  .filter((n) => !isSpecialV4(n))
  .map(intToV4);

const publicV6 = fc
  .tuple(fc.integer({ min: 0x2000, max: 0x3fff }), fc.array(hextet, { minLength: 7, maxLength: 7 }))
  .filter(([h0, rest]) => !isSpecialGlobalV6([h0, ...rest]))
  .map(([h0, rest]) => v6(h0, rest));

// --- canonicalisers under test ------------------------------------------------

// A fake DNS the properties write into just before they ask.
function resolverFor(table: Map<string, string[]>): (host: string) => Promise<string[]> {
  return (host) => Promise.resolve(table.get(host) ?? []);
}

const dns = new Map<string, string[]>();
const strict: UrlCanonicalizer = createUrlCanonicalizer({ resolver: resolverFor(dns) });
const lenient: UrlCanonicalizer = createUrlCanonicalizer({
  resolver: resolverFor(dns),
  allowNumericHosts: true,
});

const RUNS = { numRuns: 1000 };

describe('url canonicaliser properties', () => {
  it('no encoding of a private/special IPv4 address ever resolves (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(privateV4, async (n) => {
        for (const host of encodings(n)) {
          for (const c of [strict, lenient]) {
            const facts = await c.canonicalize(`http://${host}/x`);
            expect(facts.status).not.toBe('resolved');
          }
        }
        // and a name whose DNS answer is that address
        dns.set('victim.test', ['93.184.216.34', intToV4(n)]);
        expect((await strict.canonicalize('http://victim.test/')).status).toBe('denied');
        // and as a redirect hop from a public page
        expect(
          (await strict.canonicalizeRedirect(`//${String(n)}/`, 'https://8.8.8.8/')).status,
        ).toBe('denied');
      }),
      RUNS,
    );
  });

  it('no IPv6 in fc00::/7, fe80::/10 or ::ffff:0:0/96 ever resolves (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(ulaV6, linkLocalV6, mappedV6), async (addr) => {
        expect((await strict.canonicalize(`http://[${addr}]/`)).status).toBe('denied');
        dns.set('victim6.test', [addr]);
        expect((await strict.canonicalize('http://victim6.test/')).status).toBe('denied');
      }),
      RUNS,
    );
  });

  it('every public unicast IPv4 resolves, so over-blocking fails too (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(publicV4, async (addr) => {
        const facts = await strict.canonicalize(`http://${addr}/`);
        expect(facts.status === 'resolved' && facts.resource.addresses).toEqual([addr]);
        dns.set('public.test', [addr]);
        expect((await strict.canonicalize('http://public.test/')).status).toBe('resolved');
      }),
      RUNS,
    );
  });

  it('a non-dotted encoding of a public IPv4 is url.numeric_host, and only that (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(publicV4, async (addr) => {
        for (const host of encodings(v4ToInt(addr)).slice(1)) {
          const facts = await strict.canonicalize(`http://${host}/`);
          expect(facts.status === 'denied' && facts.rule).toBe('url.numeric_host');
          const allowed = await lenient.canonicalize(`http://${host}/`);
          expect(allowed.status === 'resolved' && allowed.resource.addresses).toEqual([addr]);
        }
      }),
      RUNS,
    );
  });

  it('every public global-unicast IPv6 resolves (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(publicV6, async (addr) => {
        const facts = await strict.canonicalize(`http://[${addr}]/`);
        expect(facts.status).toBe('resolved');
      }),
      RUNS,
    );
  });

  it('never throws on arbitrary strings (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 80, unit: 'binary' }),
          fc.webUrl({ withQueryParameters: true, withFragments: true }),
        ),
        async (raw) => {
          const facts = await strict.canonicalize(raw);
          expect(['resolved', 'denied', 'unresolvable', 'invalid']).toContain(facts.status);
        },
      ),
      RUNS,
    );
  });
});
