import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { CHECK_INVARIANT, denial, invariantOf, REASON_INVARIANT } from './refusal';
import { REASON_CODES } from './reason-codes';

const ROOT = resolve(__dirname, '..', '..', '..');

/** Production sources: no specs, no test kits, no generated code, no build output. */
function productionSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (['node_modules', 'dist', 'generated', 'testing'].includes(e.name)) return [];
      return productionSources(p);
    }
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [p] : [];
  });
}

describe('the one denial factory', () => {
  it('is the only place in the source tree that constructs a denial', () => {
    const files = ['libs', 'services', 'apps', 'bench'].flatMap((d) =>
      productionSources(join(ROOT, d)),
    );
    expect(files.length).toBeGreaterThan(100);
    // A denial is any object or assignment giving `outcome` the value 'deny'.
    const construction = /\boutcome\s*[:=]\s*['"`]deny['"`]/g;
    const sites = files.flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      return [...text.matchAll(construction)].map(() => relative(ROOT, f));
    });
    expect(sites).toEqual(['libs/core/src/refusal.ts']);
  });

  it('has an invariant entry for every reason but ALLOWED', () => {
    expect(Object.keys(REASON_INVARIANT).sort()).toEqual(
      REASON_CODES.filter((c) => c !== 'ALLOWED').sort(),
    );
  });

  it('names the engine check invariant for an engine check, the reason one elsewhere', () => {
    // INPUT_INVALID from the canonical_resource check is a resource failure (I3) ...
    expect(invariantOf('INPUT_INVALID', 'canonical_resource')).toBe('I3');
    // ... and names no invariant when the edge refuses malformed input itself.
    expect(invariantOf('INPUT_INVALID', 'input_bounds')).toBeUndefined();
    expect(invariantOf('HANDLE_NOT_OWNED', 'vault.peek')).toBe('I4');
    expect(invariantOf('POLICY_UNAVAILABLE', 'policy_source')).toBeUndefined();
    for (const [check, inv] of Object.entries(CHECK_INVARIANT)) {
      expect(invariantOf('POLICY_UNAVAILABLE', check)).toBe(inv);
    }
  });

  it('builds a denial with a fresh id, or the id it is given', () => {
    const a = denial({ reason: 'RESOURCE_DENIED', check: 'x', explanation: 'e', decidedAt: 5 });
    expect(a).toMatchObject({
      outcome: 'deny',
      reason: 'RESOURCE_DENIED',
      invariant: 'I3',
      check: 'x',
      decidedAt: 5,
      ablations: [],
    });
    expect(a.id).toMatch(/^dec_/);
    const b = denial({
      id: 'dec_given',
      reason: 'PROVIDER_UNAVAILABLE',
      check: 'invocation',
      explanation: 'e',
      decidedAt: 5,
    });
    expect(b.id).toBe('dec_given');
    expect(b.invariant).toBeUndefined();
  });
});
