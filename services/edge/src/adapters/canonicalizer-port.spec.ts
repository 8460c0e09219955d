import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArgumentResource, Capability, ResourceArgument, ResourceFacts } from '@hcp/core';
import type { ProviderConfig } from '../providers/provider-config';
import { canonicalizerPort, MAX_RESOURCES_PER_ARGUMENT } from './canonicalizer-port';

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
    resourceArguments:
      canonicalizer === undefined
        ? []
        : [
            {
              name: canonicalizer === 'url' ? 'url' : 'path',
              canonicalizer,
              role:
                canonicalizer === 'url' ? 'fetch' : effects.includes('write') ? 'write' : 'read',
            },
          ],
  };
}

/** A capability declaring exactly these resource arguments. */
function declaring(id: string, resourceArguments: ResourceArgument[]): Capability {
  return { ...capability(id, undefined), resourceArguments };
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
  expect(facts).toBeDefined();
  expect(facts?.status).not.toBe('resolved');
  if (rule !== undefined) expect(facts).toMatchObject({ rule });
}

describe('canonicalizerPort', () => {
  let tmp: string;
  let root: string;
  const configs = new Map<string, ProviderConfig>();
  const port = canonicalizerPort((id) => configs.get(id), { resolver });
  /** The facts of a single-resource call (asserting there is exactly one). */
  async function one(
    cap: Capability,
    args: Record<string, unknown>,
  ): Promise<ResourceFacts | undefined> {
    const all: ArgumentResource[] = await port.canonicalize(cap, args);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ argument: cap.resourceArguments[0]?.name, index: 0 });
    return all[0]?.facts;
  }

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

  it('answers no facts for a capability without a resource argument', async () => {
    expect(await port.canonicalize(capability('x/ping', undefined), { path: '/etc' })).toEqual([]);
  });

  describe('paths (the provider’s filesystem roots)', () => {
    it('resolves a file inside the root to its real path', async () => {
      expect(await one(readFile, { path: join(root, 'sub', 'b.txt') })).toEqual({
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
      expectDenied(await one(readFile, { path: raw() }), rule);
    });

    it('lets a write name a file that does not exist yet, but a read not', async () => {
      const fresh = join(root, 'new.txt');
      expect((await one(writeFile_, { path: fresh }))?.status).toBe('resolved');
      expectDenied(await one(readFile, { path: fresh }), 'path.not_found');
    });

    it('denies every path of a provider without roots, and of an unregistered provider', async () => {
      expectDenied(
        await one(capability('web/read', 'path'), { path: join(root, 'a.txt') }),
        'path.no_roots',
      );
      expectDenied(
        await one(capability('ghost/read', 'path'), { path: join(root, 'a.txt') }),
        'path.no_roots',
      );
    });

    it('refuses a non-string argument as invalid facts; a missing one has no facts', async () => {
      expectDenied(await one(readFile, { path: 42 }), 'path.not_string');
      // No fact: the decision point answers INPUT_INVALID (resource argument missing).
      expect(await port.canonicalize(readFile, {})).toEqual([]);
    });

    it('reports an unavailable root as unresolvable facts instead of throwing, and recovers', async () => {
      const gone = join(tmp, 'later');
      configs.set('late', {
        id: 'late',
        transport: { kind: 'stdio', command: 'node', args: [] },
        resources: { filesystemRoots: [gone] },
      });
      const cap = capability('late/read', 'path');
      expectDenied(await one(cap, { path: join(gone, 'f') }), 'path.io_error');
      await mkdir(gone);
      await writeFile(join(gone, 'f'), 'f');
      expect((await one(cap, { path: join(gone, 'f') }))?.status).toBe('resolved');
    });

    it('follows a re-registered provider to its new roots', async () => {
      const other = join(tmp, 'outside');
      const cap = capability('moving/read', 'path');
      configs.set('moving', {
        id: 'moving',
        transport: { kind: 'stdio', command: 'node', args: [] },
        resources: { filesystemRoots: [root] },
      });
      expectDenied(await one(cap, { path: join(other, 'secret') }), 'path.outside_roots');
      configs.set('moving', {
        id: 'moving',
        transport: { kind: 'stdio', command: 'node', args: [] },
        resources: { filesystemRoots: [other] },
      });
      expect((await one(cap, { path: join(other, 'secret') }))?.status).toBe('resolved');
    });
  });

  describe('URLs (host/IP rules with the injected resolver)', () => {
    it('resolves a public host', async () => {
      expect(await one(fetchUrl, { url: 'https://example.org/x' })).toMatchObject({
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
      expectDenied(await one(fetchUrl, { url }));
    });

    it('admits a private range only for a provider whose allowCidrs lists it', async () => {
      configs.set('intranet', {
        id: 'intranet',
        transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
        resources: { allowCidrs: ['10.1.0.0/16'] },
      });
      const cap = capability('intranet/fetch', 'url', ['network']);
      expect((await one(cap, { url: 'http://internal.corp/' }))?.status).toBe('resolved');
      expectDenied(await one(cap, { url: 'http://127.0.0.1/' }));
    });
  });

  describe('opaque ids', () => {
    const ticket: Capability = {
      ...capability('jira/get', undefined),
      resourceArguments: [{ name: 'key', canonicalizer: 'id', role: 'read' }],
    };

    it('keeps an id verbatim and refuses one with control characters', async () => {
      expect(await one(ticket, { key: 'HCP-12' })).toMatchObject({
        status: 'resolved',
        resource: { canonical: 'HCP-12' },
      });
      expectDenied(await one(ticket, { key: 'HCP\u202e-12' }));
    });
  });

  describe('several resource arguments', () => {
    const move = declaring('fs/move_file', [
      { name: 'source', canonicalizer: 'path', role: 'delete' },
      { name: 'destination', canonicalizer: 'path', role: 'write' },
    ]);
    const readMany = declaring('fs/read_multiple_files', [
      { name: 'paths', canonicalizer: 'path', role: 'read', many: true },
    ]);

    it('canonicalises every declared argument in declaration order, each for its role', async () => {
      const facts = await port.canonicalize(move, {
        destination: join(root, 'moved.txt'),
        source: join(root, 'a.txt'),
      });
      expect(facts).toEqual([
        {
          argument: 'source',
          index: 0,
          facts: expect.objectContaining({ status: 'resolved' }) as unknown,
        },
        {
          argument: 'destination',
          index: 0,
          facts: expect.objectContaining({ status: 'resolved' }) as unknown,
        },
      ]);
      // A source must exist (it is removed); only the destination may be new.
      const [source] = await port.canonicalize(move, {
        source: join(root, 'nope.txt'),
        destination: join(root, 'moved.txt'),
      });
      expectDenied(source?.facts, 'path.not_found');
    });

    it('decides each argument on its own: one outside the roots does not hide the other', async () => {
      const facts = await port.canonicalize(move, {
        source: join(tmp, 'outside', 'secret'),
        destination: join(root, 'moved.txt'),
      });
      expect(facts.map((f) => [f.argument, f.facts.status])).toEqual([
        ['source', 'denied'],
        ['destination', 'resolved'],
      ]);
      // An absent argument has no fact (the decision point refuses it as missing).
      expect(
        (await port.canonicalize(move, { source: join(root, 'a.txt') })).map((f) => f.argument),
      ).toEqual(['source']);
    });

    it('canonicalises every element of an array argument, indexed', async () => {
      const facts = await port.canonicalize(readMany, {
        paths: [join(root, 'a.txt'), join(root, '..', 'outside', 'secret'), join(root, 'sub')],
      });
      expect(facts.map((f) => [f.argument, f.index, f.facts.status])).toEqual([
        ['paths', 0, 'resolved'],
        ['paths', 1, 'denied'],
        ['paths', 2, 'resolved'],
      ]);
    });

    it.each<[string, unknown, string]>([
      ['a string instead of an array', '/etc/passwd', 'resource.not_array'],
      ['an empty array', [], 'resource.empty_array'],
      ['a non-string element', ['/a', 7], 'resource.not_string'],
      [
        `more than ${MAX_RESOURCES_PER_ARGUMENT} elements`,
        Array.from({ length: MAX_RESOURCES_PER_ARGUMENT + 1 }, () => '/a'),
        'resource.too_many',
      ],
    ])('refuses %s as one invalid fact, never skipped', async (_l, paths, rule) => {
      const facts = await port.canonicalize(readMany, { paths });
      expect(facts).toEqual([
        {
          argument: 'paths',
          index: 0,
          facts: expect.objectContaining({ status: 'invalid', rule }) as unknown,
        },
      ]);
    });

    it(`accepts exactly ${MAX_RESOURCES_PER_ARGUMENT} elements`, async () => {
      const paths = Array.from({ length: MAX_RESOURCES_PER_ARGUMENT }, () => join(root, 'a.txt'));
      const facts = await port.canonicalize(readMany, { paths });
      expect(facts).toHaveLength(MAX_RESOURCES_PER_ARGUMENT);
      expect(facts.every((f) => f.facts.status === 'resolved')).toBe(true);
    });

    it('turns a canonicaliser that throws into an unresolvable fact for that argument only', async () => {
      // A malformed allowCidrs entry makes the URL canonicaliser throw when it is built.
      configs.set('mixed', {
        id: 'mixed',
        transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
        resources: { filesystemRoots: [root], allowCidrs: ['not-a-cidr'] },
      });
      const upload = declaring('mixed/upload', [
        { name: 'path', canonicalizer: 'path', role: 'read' },
        { name: 'url', canonicalizer: 'url', role: 'send' },
      ]);
      const facts = await port.canonicalize(upload, {
        path: join(root, 'a.txt'),
        url: 'https://example.org/in',
      });
      expect(facts.map((f) => [f.argument, f.facts.status])).toEqual([
        ['path', 'resolved'],
        ['url', 'unresolvable'],
      ]);
      expect(facts[1]?.facts).toMatchObject({
        rule: 'canonicalizer.error',
        raw: 'https://example.org/in',
      });
    });

    it("names the longest raw value each kind accepts, the provider's URL limit included", () => {
      expect(port.maxRawLength(readFile, 'path')).toBe(4096);
      expect(port.maxRawLength(fetchUrl, 'url')).toBe(8192);
      expect(port.maxRawLength(readFile, 'id')).toBeGreaterThan(0);
      configs.set('short', {
        id: 'short',
        transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
        resources: { maxUrlLength: 256 },
      });
      expect(port.maxRawLength(capability('short/fetch', 'url', ['network']), 'url')).toBe(256);
    });
  });
});
