import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// libs/core and libs/policy must do no I/O. The lint rule forbids known I/O modules; this test
// is the stricter allowlist: any new import must be added here on purpose, with a reason.
const ALLOWED: Record<string, string> = {
  'node:crypto': 'hashing only (SHA-256, random ids)',
  canonicalize: 'RFC 8785 canonical JSON',
  uuid: 'time-ordered ids',
  'ipaddr.js': 'CIDR matching in host_set grants',
  re2js: 'linear-time (RE2) matching of argument-constraint patterns: no ReDoS',
  '@hcp/core': 'domain types',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [p] : [];
  });
}

describe('libs/core and libs/policy are free of I/O', () => {
  const files = ['core', 'policy'].flatMap((lib) =>
    sources(resolve(__dirname, '..', '..', lib, 'src')),
  );

  it('finds the sources it checks', () => {
    expect(files.length).toBeGreaterThan(8);
  });

  it.each(files.map((f) => [f.split('/libs/')[1]!, f]))(
    '%s imports only allowed modules',
    (_n, file) => {
      const text = readFileSync(file, 'utf8');
      const specifiers = [...text.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)].map(
        (m) => m[1]!,
      );
      const external = specifiers.filter((s) => !s.startsWith('.'));
      expect(external.filter((s) => !(s in ALLOWED))).toEqual([]);
    },
  );
});
