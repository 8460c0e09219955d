import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Capability, ResourceFacts } from '@hcp/core';
import type { ProviderConfig } from '../providers/provider-config';
import { canonicalizerPort } from './canonicalizer-port';

function capability(
  id: string,
  canonicalizer: 'path' | 'url' | 'id' | undefined,
  effects: Capability['effects'] = ['read'],
): Capability {
  const [provider = '', tool = ''] = id.split('/');
  return {
    id,
    provider,
    tool,
    effects,
    risk: 'low',
    approvalRequired: false,
    requiredScopes: [],
    ...(canonicalizer === undefined
      ? {}
      : { resourceArgument: { name: canonicalizer === 'url' ? 'url' : 'path', canonicalizer } }),
  };
}

const readFile = capability('fs/read_file', 'path');
const writeFile_ = capability('fs/write_file', 'path', ['write']);
const fetchUrl = capability('web/fetch', 'url', ['network']);

/** A fake DNS: the only I/O seam of URL canonicalisation (real resolution is not reproducible). */
const dns: Record<string, string[]> = {
  'example.org': ['93.184.215.14'],
  'internal.corp': ['10.1.2.3'],
  'rebind.example': ['93.184.215.14', '127.0.0.1'],
};
const resolver = (host: string) => Promise.resolve(dns[host] ?? []);

function expectDenied(facts: ResourceFacts | undefined, rule?: string) {
  expect(facts?.status).not.toBe('resolved');
  if (rule !== undefined) expect(facts).toMatchObject({ rule });
}

describe('canonicalizerPort', () => {
  let tmp: string;
  let root: string;
  const configs = new Map<string, ProviderConfig>();
  const port = canonicalizerPort((id) => configs.get(id), { resolver });

  beforeAll(async () => {
    tmp = await realpath(await mkdtemp(join(tmpdir(), 'hcp-edge-canon-')));
    root = join(tmp, 'root');
    await mkdir(join(root, 'sub'), { recursive: true });
    await mkdir(join(tmp, 'root_evil'));
    await mkdir(join(tmp, 'outside'));
    await writeFile(join(root, 'a.txt'), 'a');
    await writeFile(join(root, 'sub', 'b.txt'), 'b');
    await writeFile(join(tmp, 'root_evil', 'x.txt'), 'evil');
    await writeFile(join(tmp, 'outside', 'secret'), 's');
    await symlink(join(tmp, 'outside', 'secret'), join(root, 'escape'));
    configs.set('fs', {
      id: 'fs',
      transport: { kind: 'stdio', command: 'node', args: [] },
      resources: { filesystemRoots: [root] },
    });
    configs.set('web', { id: 'web', transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' } });
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('answers undefined for a capability without a resource argument', async () => {
    expect(await port.canonicalize(capability('x/ping', undefined), {})).toBeUndefined();
  });

  describe('paths (the provider’s filesystem roots)', () => {
    it('resolves a file inside the root to its real path', async () => {
      expect(await port.canonicalize(readFile, { path: join(root, 'sub', 'b.txt') })).toEqual({
        status: 'resolved',
        resource: expect.objectContaining({
          kind: 'path',
          canonical: join(root, 'sub', 'b.txt'),
        }) as unknown,
      });
    });

    it.each<[string, () => string, string]>([
      ['a ../ escape', () => join(root, '..', 'outside', 'secret'), 'path.outside_roots'],
      [
        'a sibling sharing the root as prefix',
        () => join(tmp, 'root_evil', 'x.txt'),
        'path.outside_roots',
      ],
      ['a symlink pointing out of the root', () => join(root, 'escape'), 'path.outside_roots'],
    ])('refuses %s as facts', async (_l, raw, rule) => {
      expectDenied(await port.canonicalize(readFile, { path: raw() }), rule);
    });

    it('lets a write name a file that does not exist yet, but a read not', async () => {
      const fresh = join(root, 'new.txt');
      expect((await port.canonicalize(writeFile_, { path: fresh }))?.status).toBe('resolved');
      expectDenied(await port.canonicalize(readFile, { path: fresh }), 'path.not_found');
    });

    it('denies every path of a provider without roots, and of an unregistered provider', async () => {
      expectDenied(
        await port.canonicalize(capability('web/read', 'path'), { path: join(root, 'a.txt') }),
        'path.no_roots',
      );
      expectDenied(
        await port.canonicalize(capability('ghost/read', 'path'), { path: join(root, 'a.txt') }),
        'path.no_roots',
      );
    });

    it('refuses a missing or non-string argument as invalid facts', async () => {
      expectDenied(await port.canonicalize(readFile, {}), 'path.not_string');
      expectDenied(await port.canonicalize(readFile, { path: 42 }), 'path.not_string');
    });

    it('reports an unavailable root as unresolvable facts instead of throwing, and recovers', async () => {
      const gone = join(tmp, 'later');
      configs.set('late', {
        id: 'late',
        transport: { kind: 'stdio', command: 'node', args: [] },
        resources: { filesystemRoots: [gone] },
      });
      const cap = capability('late/read', 'path');
      expectDenied(await port.canonicalize(cap, { path: join(gone, 'f') }), 'path.io_error');
      await mkdir(gone);
      await writeFile(join(gone, 'f'), 'f');
      expect((await port.canonicalize(cap, { path: join(gone, 'f') }))?.status).toBe('resolved');
    });

    it('follows a re-registered provider to its new roots', async () => {
      const other = join(tmp, 'outside');
      const cap = capability('moving/read', 'path');
      configs.set('moving', {
        id: 'moving',
        transport: { kind: 'stdio', command: 'node', args: [] },
        resources: { filesystemRoots: [root] },
      });
      expectDenied(
        await port.canonicalize(cap, { path: join(other, 'secret') }),
        'path.outside_roots',
      );
      configs.set('moving', {
        id: 'moving',
        transport: { kind: 'stdio', command: 'node', args: [] },
        resources: { filesystemRoots: [other] },
      });
      expect((await port.canonicalize(cap, { path: join(other, 'secret') }))?.status).toBe(
        'resolved',
      );
    });
  });

  describe('URLs (host/IP rules with the injected resolver)', () => {
    it('resolves a public host', async () => {
      expect(await port.canonicalize(fetchUrl, { url: 'https://example.org/x' })).toMatchObject({
        status: 'resolved',
        resource: { kind: 'url', host: 'example.org', addresses: ['93.184.215.14'] },
      });
    });

    it.each([
      ['http://169.254.169.254/latest/meta-data'],
      ['http://127.0.0.1/'],
      ['http://0x7f000001/'],
      ['http://[::ffff:127.0.0.1]/'],
      ['http://rebind.example/'],
      ['http://internal.corp/'],
    ])('refuses %s', async (url) => {
      expectDenied(await port.canonicalize(fetchUrl, { url }));
    });

    it('admits a private range only for a provider whose allowCidrs lists it', async () => {
      configs.set('intranet', {
        id: 'intranet',
        transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
        resources: { allowCidrs: ['10.1.0.0/16'] },
      });
      const cap = capability('intranet/fetch', 'url', ['network']);
      expect((await port.canonicalize(cap, { url: 'http://internal.corp/' }))?.status).toBe(
        'resolved',
      );
      expectDenied(await port.canonicalize(cap, { url: 'http://127.0.0.1/' }));
    });
  });

  describe('opaque ids', () => {
    const ticket: Capability = {
      ...capability('jira/get', undefined),
      resourceArgument: { name: 'key', canonicalizer: 'id' },
    };

    it('keeps an id verbatim and refuses one with control characters', async () => {
      expect(await port.canonicalize(ticket, { key: 'HCP-12' })).toMatchObject({
        status: 'resolved',
        resource: { canonical: 'HCP-12' },
      });
      expectDenied(await port.canonicalize(ticket, { key: 'HCP\u202e-12' }));
    });
  });
});
