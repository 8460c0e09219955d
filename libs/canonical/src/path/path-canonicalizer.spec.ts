import path from 'node:path';
import type { ResourceFacts } from '@hcp/core';
import { buildTestTree } from '../testing/test-tree';
import type { TestTree } from '../testing/test-tree';
import { createPathCanonicalizer } from './path-canonicalizer';
import type { PathCanonicalizer, PathIntent } from './path-canonicalizer';
import { containingRoot, isWithinRoot } from './containment';
import type { PathFs } from './path-fs';

let tree: TestTree;
let canon: PathCanonicalizer;

beforeAll(async () => {
  tree = await buildTestTree();
  canon = await createPathCanonicalizer({ roots: [tree.app] });
});

afterAll(async () => {
  await tree.cleanup();
});

function resolvedTo(facts: ResourceFacts): string {
  if (facts.status !== 'resolved') {
    throw new Error(`expected resolved, got ${facts.status} ${facts.rule}: ${facts.detail}`);
  }
  return facts.resource.canonical;
}

function refusal(facts: ResourceFacts): { status: string; rule: string; canonical?: string } {
  if (facts.status === 'resolved') {
    throw new Error(`expected a refusal, got resolved ${facts.resource.canonical}`);
  }
  return facts.canonical === undefined
    ? { status: facts.status, rule: facts.rule }
    : { status: facts.status, rule: facts.rule, canonical: facts.canonical };
}

const read = (raw: string): Promise<ResourceFacts> => canon.canonicalize(raw, 'read');
const write = (raw: string): Promise<ResourceFacts> => canon.canonicalize(raw, 'write');

describe('containment helpers', () => {
  it('admits a root and paths below it on a segment boundary only', () => {
    expect(isWithinRoot('/data/app', '/data/app')).toBe(true);
    expect(isWithinRoot('/data/app', '/data/app/x')).toBe(true);
    expect(isWithinRoot('/data/app', '/data/app/..x')).toBe(true);
    expect(isWithinRoot('/data/app', '/data/app_evil')).toBe(false);
    expect(isWithinRoot('/data/app', '/data/app_evil/x')).toBe(false);
    expect(isWithinRoot('/data/app', '/data')).toBe(false);
    expect(isWithinRoot('/', '/anything')).toBe(true);
  });

  it('picks the deepest containing root', () => {
    expect(containingRoot(['/a', '/a/b'], '/a/b/c')).toBe('/a/b');
    expect(containingRoot(['/a', '/a/b'], '/a/c')).toBe('/a');
    expect(containingRoot(['/a'], '/ab')).toBeUndefined();
  });
});

describe('path canonicaliser: resolution', () => {
  it('resolves relative paths against the first root and absolute paths as given', async () => {
    expect(resolvedTo(await read('x'))).toBe(path.join(tree.app, 'x'));
    expect(resolvedTo(await read(path.join(tree.app, 'x')))).toBe(path.join(tree.app, 'x'));
    expect(resolvedTo(await read(tree.app))).toBe(tree.app);
  });

  it('handles ., repeated and trailing slashes', async () => {
    expect(resolvedTo(await read('.//sub///y'))).toBe(path.join(tree.app, 'sub', 'y'));
    expect(resolvedTo(await read('sub/'))).toBe(path.join(tree.app, 'sub'));
    expect(resolvedTo(await read('./sub/./inner/.'))).toBe(path.join(tree.app, 'sub', 'inner'));
    expect(resolvedTo(await read('.'))).toBe(tree.app);
  });

  it('keeps the raw string and reports kind path', async () => {
    const facts = await read('sub//y');
    expect(facts).toEqual({
      status: 'resolved',
      resource: { kind: 'path', raw: 'sub//y', canonical: path.join(tree.app, 'sub', 'y') },
    });
  });

  it('applies .. after following links, as the kernel does, not lexically', async () => {
    // deep -> sub/inner, so deep/.. is sub (a lexical join would say the root).
    expect(resolvedTo(await read('deep/..'))).toBe(path.join(tree.app, 'sub'));
    // link_out_dir -> outside/d, so link_out_dir/.. is outside (lexically: the root).
    expect(refusal(await read('link_out_dir/..'))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: tree.outside,
    });
  });
});

describe('path canonicaliser: path.outside_roots', () => {
  it('denies a sibling sharing the root name as a prefix; admits the root itself', async () => {
    expect(refusal(await read(path.join(tree.evil, 'x')))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: path.join(tree.evil, 'x'),
    });
    expect(resolvedTo(await read(path.join(tree.app, 'x')))).toBe(path.join(tree.app, 'x'));
  });

  it('denies .. escaping the root; admits .. staying inside', async () => {
    expect(refusal(await read('../app_evil/x')).rule).toBe('path.outside_roots');
    expect(refusal(await read('../../outside/secret')).rule).toBe('path.outside_roots');
    expect(resolvedTo(await read('sub/../x'))).toBe(path.join(tree.app, 'x'));
  });

  it('denies a symlink escaping the root; admits a symlink staying inside', async () => {
    expect(refusal(await read('link_out/secret'))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: path.join(tree.outside, 'secret'),
    });
    expect(resolvedTo(await read('link_in/y'))).toBe(path.join(tree.app, 'sub', 'y'));
  });

  it('denies a link chain ending outside; admits a chain ending inside', async () => {
    expect(refusal(await read('chain_out1')).canonical).toBe(path.join(tree.outside, 'secret'));
    expect(resolvedTo(await read('chain1/y'))).toBe(path.join(tree.app, 'sub', 'y'));
  });

  it('denies through a symlinked intermediate dir leaving the root; admits one inside', async () => {
    expect(refusal(await read('dirlink/x'))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: path.join(tree.evil, 'x'),
    });
    expect(resolvedTo(await read('dirlink_in/y'))).toBe(path.join(tree.app, 'sub', 'y'));
  });

  it('denies absolute paths elsewhere on the system', async () => {
    expect(refusal(await read('/')).rule).toBe('path.outside_roots');
    expect(refusal(await read(tree.tmp)).rule).toBe('path.outside_roots');
  });
});

describe('path canonicaliser: roots', () => {
  it('uses the real target of a root that is itself a symlink', async () => {
    const viaLink = await createPathCanonicalizer({ roots: [tree.rootlink] });
    expect(viaLink.roots).toEqual([tree.app]);
    expect(resolvedTo(await viaLink.canonicalize(path.join(tree.rootlink, 'x'), 'read'))).toBe(
      path.join(tree.app, 'x'),
    );
    expect(resolvedTo(await viaLink.canonicalize('x', 'read'))).toBe(path.join(tree.app, 'x'));
    // rootlink/.. is the parent of the real root, so this leaves it (path.join
    // would fold the .. lexically and name another file: hence the template).
    expect(refusal(await viaLink.canonicalize(`${tree.rootlink}/../app_evil/x`, 'read'))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: path.join(tree.evil, 'x'),
    });
  });

  it('denies every path when no roots are configured (path.no_roots)', async () => {
    const none = await createPathCanonicalizer({ roots: [] });
    for (const raw of ['x', path.join(tree.app, 'x'), '/']) {
      for (const intent of ['read', 'write'] as const) {
        expect(refusal(await none.canonicalize(raw, intent))).toEqual({
          status: 'denied',
          rule: 'path.no_roots',
        });
      }
    }
  });

  it('admits every configured root; relative paths go to the first', async () => {
    const two = await createPathCanonicalizer({ roots: [tree.app, tree.outside] });
    expect(resolvedTo(await two.canonicalize(path.join(tree.outside, 'secret'), 'read'))).toBe(
      path.join(tree.outside, 'secret'),
    );
    expect(resolvedTo(await two.canonicalize('x', 'read'))).toBe(path.join(tree.app, 'x'));
    expect(refusal(await two.canonicalize(path.join(tree.evil, 'x'), 'read')).rule).toBe(
      'path.outside_roots',
    );
  });

  it('fails fast at creation on a relative, missing or non-directory root', async () => {
    await expect(createPathCanonicalizer({ roots: ['relative/dir'] })).rejects.toThrow(/absolute/);
    await expect(
      createPathCanonicalizer({ roots: [path.join(tree.tmp, 'no-such-root')] }),
    ).rejects.toThrow();
    await expect(
      createPathCanonicalizer({ roots: [path.join(tree.outside, 'secret')] }),
    ).rejects.toThrow(/not a directory/);
  });
});

describe('path canonicaliser: case follows the real filesystem', () => {
  it('does not admit a differently-cased spelling of the root on a case-sensitive fs', async () => {
    if (!tree.caseSensitive) return; // realpath folds case there; nothing to distinguish
    const upper = path.join(tree.tmp, 'data', 'APP', 'x');
    expect(refusal(await read(upper))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: upper,
    });
    expect(refusal(await read(path.join(tree.tmp, 'data', 'App', 'x')))).toEqual({
      status: 'unresolvable',
      rule: 'path.not_found',
    });
    expect(resolvedTo(await read(path.join(tree.tmp, 'data', 'app', 'x')))).toBe(
      path.join(tree.app, 'x'),
    );
  });
});

describe('path canonicaliser: path.hidden_config', () => {
  it('denies .env; admits env.txt', async () => {
    expect(refusal(await read('.env'))).toEqual({
      status: 'denied',
      rule: 'path.hidden_config',
      canonical: path.join(tree.app, '.env'),
    });
    expect(resolvedTo(await read('env.txt'))).toBe(path.join(tree.app, 'env.txt'));
  });

  it('denies files under hidden directories, for reads and writes', async () => {
    for (const raw of ['.ssh/id_rsa', '.git/config', '.aws/credentials', '.ssh/new_key']) {
      for (const intent of ['read', 'write'] as const) {
        if (intent === 'read' && raw === '.ssh/new_key') continue;
        expect(refusal(await canon.canonicalize(raw, intent)).rule).toBe('path.hidden_config');
      }
    }
  });

  it('judges the link target, not the link name', async () => {
    expect(refusal(await read('cfg_link'))).toEqual({
      status: 'denied',
      rule: 'path.hidden_config',
      canonical: path.join(tree.app, '.git', 'config'),
    });
  });

  it('only looks below the root: a root inside a hidden directory works', async () => {
    const inHidden = await createPathCanonicalizer({ roots: [path.join(tree.app, '.config')] });
    expect(resolvedTo(await inHidden.canonicalize('app/x', 'read'))).toBe(
      path.join(tree.app, '.config', 'app', 'x'),
    );
  });

  it('admits names and subtrees listed in hiddenAllow; their neighbours stay denied', async () => {
    const allow = await createPathCanonicalizer({
      roots: [tree.app],
      hiddenAllow: ['.well-known', '.config/app'],
    });
    expect(resolvedTo(await allow.canonicalize('.well-known/a', 'read'))).toBe(
      path.join(tree.app, '.well-known', 'a'),
    );
    expect(resolvedTo(await allow.canonicalize('.config/app/x', 'read'))).toBe(
      path.join(tree.app, '.config', 'app', 'x'),
    );
    expect(refusal(await allow.canonicalize('.config/other/x', 'read')).rule).toBe(
      'path.hidden_config',
    );
    expect(refusal(await allow.canonicalize('.config', 'read')).rule).toBe('path.hidden_config');
    expect(refusal(await allow.canonicalize('.env', 'read')).rule).toBe('path.hidden_config');
  });

  it('rejects hiddenAllow entries that could widen the rule', async () => {
    await expect(createPathCanonicalizer({ roots: [], hiddenAllow: ['..'] })).rejects.toThrow();
    await expect(createPathCanonicalizer({ roots: [], hiddenAllow: [''] })).rejects.toThrow();
  });

  it('is off with denyHidden: false; containment still applies', async () => {
    const open = await createPathCanonicalizer({ roots: [tree.app], denyHidden: false });
    expect(resolvedTo(await open.canonicalize('.env', 'read'))).toBe(path.join(tree.app, '.env'));
    expect(refusal(await open.canonicalize('link_out/secret', 'read')).rule).toBe(
      'path.outside_roots',
    );
  });
});

describe('path canonicaliser: missing files and links', () => {
  it('path.not_found for a missing file on read; the same name resolves for write', async () => {
    expect(refusal(await read('new.txt'))).toEqual({
      status: 'unresolvable',
      rule: 'path.not_found',
    });
    expect(resolvedTo(await write('new.txt'))).toBe(path.join(tree.app, 'new.txt'));
  });

  it('path.missing_parent for a write under a missing dir; a write under an existing dir resolves', async () => {
    expect(refusal(await write('nodir/new.txt'))).toEqual({
      status: 'unresolvable',
      rule: 'path.missing_parent',
    });
    expect(resolvedTo(await write('sub/new.txt'))).toBe(path.join(tree.app, 'sub', 'new.txt'));
    expect(resolvedTo(await write('sub/new-dir/'))).toBe(path.join(tree.app, 'sub', 'new-dir'));
  });

  it('path.not_directory when a component is a file', async () => {
    expect(refusal(await write('x/new.txt'))).toEqual({
      status: 'unresolvable',
      rule: 'path.not_directory',
    });
    expect(refusal(await read('x/y')).rule).toBe('path.not_directory');
  });

  it('path.dangling_link for reads and writes through a dangling link; a live link resolves', async () => {
    for (const intent of ['read', 'write'] as PathIntent[]) {
      expect(refusal(await canon.canonicalize('dangling', intent))).toEqual({
        status: 'unresolvable',
        rule: 'path.dangling_link',
      });
      expect(refusal(await canon.canonicalize('dangling_out', intent)).rule).toBe(
        'path.dangling_link',
      );
    }
    expect(refusal(await write('dangling/')).rule).toBe('path.dangling_link');
    expect(resolvedTo(await read('link_in'))).toBe(path.join(tree.app, 'sub'));
  });

  it('a write to an existing symlink canonicalises to its target and is checked against roots', async () => {
    expect(resolvedTo(await write('file_link'))).toBe(path.join(tree.app, 'x'));
    expect(refusal(await write('write_out'))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: path.join(tree.outside, 'target.txt'),
    });
  });

  it('a new file under a symlinked dir is judged by the real parent', async () => {
    expect(refusal(await write('link_out/new.txt'))).toEqual({
      status: 'denied',
      rule: 'path.outside_roots',
      canonical: path.join(tree.outside, 'new.txt'),
    });
    expect(resolvedTo(await write('link_in/new.txt'))).toBe(path.join(tree.app, 'sub', 'new.txt'));
  });

  it('path.bad_basename when a write would create . or ..; an existing .. resolves', async () => {
    expect(refusal(await write('nodir/..'))).toEqual({
      status: 'invalid',
      rule: 'path.bad_basename',
    });
    expect(resolvedTo(await write('sub/..'))).toBe(tree.app);
  });

  it('path.link_loop for a symlink cycle', async () => {
    expect(refusal(await read('loop1'))).toEqual({
      status: 'unresolvable',
      rule: 'path.link_loop',
    });
    expect(refusal(await write('loop1')).rule).toBe('path.link_loop');
  });
});

describe('path canonicaliser: bounded input', () => {
  it('rejects empty, over-long, NUL and control characters as invalid; never throws', async () => {
    expect(refusal(await read(''))).toEqual({ status: 'invalid', rule: 'path.empty' });
    expect(refusal(await read('a'.repeat(4097)))).toEqual({
      status: 'invalid',
      rule: 'path.too_long',
    });
    expect(resolvedTo(await write('a'.repeat(200)))).toBe(path.join(tree.app, 'a'.repeat(200)));
    expect(refusal(await read('x\0y'))).toEqual({ status: 'invalid', rule: 'path.control_char' });
    expect(refusal(await read('x\ny'))).toEqual({ status: 'invalid', rule: 'path.control_char' });
    expect(refusal(await read(42 as unknown as string))).toEqual({
      status: 'invalid',
      rule: 'path.not_string',
    });
  });

  it('path.too_long when a segment exceeds the filesystem name limit', async () => {
    expect(refusal(await write('a'.repeat(300))).status).toBe('invalid');
  });

  it('keeps an over-long raw value bounded in the facts', async () => {
    const facts = await read('a'.repeat(100_000));
    expect(facts.status === 'invalid' && facts.raw.length).toBe(4096);
  });
});

describe('path canonicaliser: injected fs', () => {
  const fake = (fail: string): PathFs => ({
    realpath: (p) =>
      p === '/root'
        ? Promise.resolve('/root')
        : Promise.reject(Object.assign(new Error(fail), { code: fail })),
    lstat: () => Promise.reject(Object.assign(new Error('ENOENT'), { code: 'ENOENT' })),
    stat: () => Promise.resolve({ isDirectory: () => true }),
  });

  it('maps EACCES to path.access and unknown failures to path.io_error', async () => {
    const denied = await createPathCanonicalizer({ roots: ['/root'], fs: fake('EACCES') });
    expect(refusal(await denied.canonicalize('x', 'read'))).toEqual({
      status: 'unresolvable',
      rule: 'path.access',
    });
    const broken = await createPathCanonicalizer({ roots: ['/root'], fs: fake('EIO') });
    expect(refusal(await broken.canonicalize('x', 'write'))).toEqual({
      status: 'unresolvable',
      rule: 'path.io_error',
    });
  });

  it('turns a misbehaving fs (synchronous throw) into path.io_error instead of throwing', async () => {
    const c = await createPathCanonicalizer({ roots: ['/root'], fs: fake('ENOENT') });
    const throwing: PathFs = {
      ...fake('ENOENT'),
      lstat: () => {
        throw new Error('boom');
      },
    };
    expect((await c.canonicalize('x', 'read')).status).toBe('unresolvable');
    const bad = await createPathCanonicalizer({ roots: ['/root'], fs: throwing });
    expect(refusal(await bad.canonicalize('x', 'read'))).toEqual({
      status: 'unresolvable',
      rule: 'path.io_error',
    });
  });

  it('resolves through the injected view of the filesystem', async () => {
    const view: PathFs = {
      realpath: (p) => Promise.resolve(p === '/root' ? '/srv/real' : '/srv/real/file'),
      lstat: () => Promise.resolve({ isSymbolicLink: () => false }),
      stat: () => Promise.resolve({ isDirectory: () => true }),
    };
    const c = await createPathCanonicalizer({ roots: ['/root'], fs: view });
    expect(resolvedTo(await c.canonicalize('anything', 'read'))).toBe('/srv/real/file');
  });
});
