import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * A real directory tree with real symlinks for the path canonicaliser specs
 * (never mock what you can run for real). Layout, with `app` the root:
 *
 *   <tmp>/data/app/            x, env.txt, .env, .ssh/id_rsa, .git/config, .aws/credentials,
 *                              .well-known/a, .config/app/x, .config/other/x, sub/y, sub/inner/z,
 *                              a/b/c, link_in -> sub, link_out -> ../../outside,
 *                              chain1 -> chain2 -> sub, chain_out1 -> chain_out2 -> <outside>/secret,
 *                              dirlink -> ../app_evil, dirlink_in -> sub, deep -> sub/inner,
 *                              link_out_dir -> ../../outside/d, b -> ../app_evil,
 *                              dangling -> missing_target, dangling_out -> <outside>/nope,
 *                              loop1 <-> loop2, file_link -> x, write_out -> ../../outside/target.txt,
 *                              cfg_link -> .git/config
 *   <tmp>/data/app_evil/x      a sibling sharing the root's name as a prefix
 *   <tmp>/data/APP/x           a differently-cased sibling (on a case-sensitive filesystem)
 *   <tmp>/outside/             secret, target.txt, d/
 *   <tmp>/rootlink -> data/app a root that is itself a symlink
 */
export interface TestTree {
  readonly tmp: string;
  readonly app: string;
  readonly evil: string;
  readonly outside: string;
  readonly rootlink: string;
  readonly caseSensitive: boolean;
  cleanup(): Promise<void>;
}

/** Builds the tree under os.tmpdir(); call cleanup() in afterAll. */
export async function buildTestTree(): Promise<TestTree> {
  const tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'hcp-canonical-')));
  const app = path.join(tmp, 'data', 'app');
  const evil = path.join(tmp, 'data', 'app_evil');
  const outside = path.join(tmp, 'outside');
  const file = async (p: string, body = 'x'): Promise<void> => {
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, body);
  };
  const link = (target: string, at: string): Promise<void> => symlink(target, path.join(app, at));

  for (const f of [
    'x',
    'env.txt',
    '.env',
    '.ssh/id_rsa',
    '.git/config',
    '.aws/credentials',
    '.well-known/a',
    '.config/app/x',
    '.config/other/x',
    'sub/y',
    'sub/inner/z',
    'a/b/c',
  ]) {
    await file(path.join(app, f));
  }
  await file(path.join(evil, 'x'));
  await file(path.join(outside, 'secret'));
  await file(path.join(outside, 'target.txt'));
  await mkdir(path.join(outside, 'd'));

  await link('sub', 'link_in');
  await link('../../outside', 'link_out');
  await link('chain2', 'chain1');
  await link('sub', 'chain2');
  await link('chain_out2', 'chain_out1');
  await link(path.join(outside, 'secret'), 'chain_out2');
  await link('../app_evil', 'dirlink');
  await link('sub', 'dirlink_in');
  await link('sub/inner', 'deep');
  await link('../../outside/d', 'link_out_dir');
  await link('../app_evil', 'b');
  await link('missing_target', 'dangling');
  await link(path.join(outside, 'nope'), 'dangling_out');
  await link('loop2', 'loop1');
  await link('loop1', 'loop2');
  await link('x', 'file_link');
  await link('../../outside/target.txt', 'write_out');
  await link('.git/config', 'cfg_link');

  const rootlink = path.join(tmp, 'rootlink');
  await symlink(path.join('data', 'app'), rootlink);

  // A differently-cased sibling only exists as a separate directory when the
  // filesystem is case-sensitive; on a case-insensitive one it is `app` itself.
  let caseSensitive = true;
  try {
    await mkdir(path.join(tmp, 'data', 'APP'));
    await file(path.join(tmp, 'data', 'APP', 'x'));
  } catch {
    caseSensitive = false;
  }

  return {
    tmp,
    app,
    evil,
    outside,
    rootlink,
    caseSensitive,
    cleanup: () => rm(tmp, { recursive: true, force: true }),
  };
}
