import { realpath } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { buildTestTree } from '../testing/test-tree';
import type { TestTree } from '../testing/test-tree';
import { createPathCanonicalizer } from './path-canonicalizer';
import type { PathCanonicalizer, PathIntent } from './path-canonicalizer';

let tree: TestTree;
let canon: PathCanonicalizer;
// The hidden rule also refuses `..` segments below a root, which would mask a
// containment bug; this one checks containment on its own.
let noHidden: PathCanonicalizer;

beforeAll(async () => {
  tree = await buildTestTree();
  canon = await createPathCanonicalizer({ roots: [tree.app] });
  noHidden = await createPathCanonicalizer({ roots: [tree.app], denyHidden: false });
});

afterAll(async () => {
  await tree.cleanup();
});

// Written separately from the production check on purpose: an oracle that
// shares the code under test would share its bugs.
function oracleInside(root: string, candidate: string): boolean {
  if (!path.isAbsolute(candidate)) return false;
  const rel = path.relative(root, candidate);
  if (rel === '') return true;
  return rel.split(path.sep)[0] !== '..' && !path.isAbsolute(rel);
}

const SEGMENTS = [
  'a',
  'b',
  'c',
  '..',
  '.',
  '',
  'x',
  'x_evil',
  'app',
  'app_evil',
  'APP',
  'data',
  'sub',
  'inner',
  'y',
  'outside',
  'secret',
  '.env',
  '.git',
  'config',
  'new.txt',
  // symlinks present in the tree
  'link_in',
  'link_out',
  'chain1',
  'chain_out1',
  'dirlink',
  'dirlink_in',
  'deep',
  'link_out_dir',
  'dangling',
  'dangling_out',
  'loop1',
  'file_link',
  'write_out',
  'cfg_link',
  'rootlink',
];

const relativePath = fc
  .array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 8 })
  .map((segments) => segments.join('/'));

const absolutePath = fc
  .tuple(
    fc.constantFrom<() => string>(
      () => tree.app,
      () => tree.evil,
      () => tree.tmp,
      () => path.join(tree.tmp, 'data'),
      () => tree.rootlink,
      () => tree.outside,
      () => '/',
    ),
    relativePath,
  )
  .map(([prefix, rest]) => `${prefix()}/${rest}`);

// Mostly-resolvable paths (existing names first, then anything), so the run
// also exercises the allow side instead of drowning in not-found.
const nearInside = fc
  .tuple(
    fc.array(
      fc.constantFrom('sub', 'link_in', 'chain1', 'deep', 'a', 'b', 'dirlink_in', '.', '..'),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
    fc.array(fc.constantFrom(...SEGMENTS), { maxLength: 2 }),
  )
  .map(([head, tail]) => [...head, ...tail].join('/'));

const anyPath = fc.oneof(
  { arbitrary: relativePath, weight: 1 },
  { arbitrary: absolutePath, weight: 1 },
  { arbitrary: nearInside, weight: 2 },
);

const intent = fc.constantFrom<PathIntent>('read', 'write');

describe('path canonicaliser properties', () => {
  it('never resolves a path outside the roots or through a hidden segment (1,000 runs)', async () => {
    const seen = { resolved: 0, denied: 0, other: 0 };
    await fc.assert(
      fc.asyncProperty(anyPath, intent, async (raw, how) => {
        const open = await noHidden.canonicalize(raw, how);
        if (open.status === 'resolved') {
          expect(oracleInside(tree.app, open.resource.canonical)).toBe(true);
        }
        const facts = await canon.canonicalize(raw, how);
        if (facts.status !== 'resolved') {
          if (facts.status === 'denied') seen.denied += 1;
          else seen.other += 1;
          return;
        }
        seen.resolved += 1;
        const { canonical } = facts.resource;
        expect(oracleInside(tree.app, canonical)).toBe(true);
        const below = path.relative(tree.app, canonical);
        expect(below.split(path.sep).some((s) => s.startsWith('.'))).toBe(false);
        // canonical really is the real path: the existing prefix is its own realpath.
        const existing = how === 'read' ? canonical : path.dirname(canonical);
        expect(await realpath(existing)).toBe(existing);
      }),
      { numRuns: 1000 },
    );
    // Neither side may be vacuous: generation must reach both allows and denials.
    // (Typically ~150 resolved and ~80 denied; the bounds leave room for the seed.)
    expect(seen.resolved).toBeGreaterThan(60);
    expect(seen.denied).toBeGreaterThan(30);
  });

  it('never resolves anything with no roots (1,000 runs)', async () => {
    const none = await createPathCanonicalizer({ roots: [] });
    await fc.assert(
      fc.asyncProperty(anyPath, intent, async (raw, how) => {
        const { status } = await none.canonicalize(raw, how);
        expect(status === 'denied' || status === 'invalid').toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary strings (1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 64, unit: 'binary' }), intent, async (raw, how) => {
        const facts = await canon.canonicalize(raw, how);
        if (facts.status === 'resolved') {
          expect(oracleInside(tree.app, facts.resource.canonical)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
