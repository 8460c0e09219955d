import { HcpError, type Capability } from '@hcp/core';
import { grants as pb } from '@hcp/proto';
import { NotFoundError } from './errors';
import { MANIFEST, serviceHarness, T0, type ServiceHarness } from './testing/harness';

async function expectInvalid(p: Promise<unknown>, field: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HcpError);
  expect((err as HcpError).reason).toBe('INPUT_INVALID');
  expect((err as HcpError).details['field']).toBe(field);
}

const readFile = MANIFEST[0]!;

describe('CapabilityService', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await serviceHarness();
  });
  afterAll(() => h.close());
  beforeEach(() => h.reset());

  it('puts, gets and lists the manifest with its revision', async () => {
    await expect(h.capabilities.list('')).resolves.toEqual({ capabilities: [], revision: 0 });
    for (const c of MANIFEST) await h.capabilities.put(c);
    const all = await h.capabilities.list('');
    expect(all.revision).toBe(MANIFEST.length);
    expect(all.capabilities).toEqual([...MANIFEST].sort((a, b) => a.id.localeCompare(b.id)));
    const fs = await h.capabilities.list('fs');
    expect(fs.capabilities.map((c) => c.id)).toEqual([
      'fs/move_file',
      'fs/read_file',
      'fs/write_file',
    ]);
    expect(fs.revision).toBe(MANIFEST.length);
    await expect(h.capabilities.list('nobody')).resolves.toEqual({
      capabilities: [],
      revision: MANIFEST.length,
    });
    await expect(h.capabilities.get('shell/exec')).resolves.toEqual(MANIFEST[3]);
    await expect(h.capabilities.get('fs/move_file')).resolves.toEqual(MANIFEST[4]);
  });

  it('replaces a capability by id, bumps the manifest revision and publishes CAPABILITY_PUT', async () => {
    const first = await h.capabilities.put(readFile);
    h.clock.advance(1);
    const changed: Capability = { ...readFile, risk: 'high', approvalRequired: true };
    const second = await h.capabilities.put(changed);
    expect([first.manifestRevision, second.manifestRevision]).toEqual([1, 2]);
    expect(second.capability).toEqual(changed);
    await expect(h.capabilities.get(readFile.id)).resolves.toEqual(changed);
    await h.settle();
    expect(h.events).toEqual([
      {
        principalId: '',
        revision: 1,
        grantId: '',
        kind: pb.GrantChangeKind.GRANT_CHANGE_KIND_CAPABILITY_PUT,
        capabilityId: 'fs/read_file',
        changedAt: { seconds: T0 / 1000, nanos: 0 },
      },
      {
        principalId: '',
        revision: 2,
        grantId: '',
        kind: pb.GrantChangeKind.GRANT_CHANGE_KIND_CAPABILITY_PUT,
        capabilityId: 'fs/read_file',
        changedAt: { seconds: T0 / 1000, nanos: 1_000_000 },
      },
    ]);
  });

  it('answers NotFoundError (reason CAPABILITY_UNKNOWN) for an unknown id', async () => {
    const err = await h.capabilities.get('fs/nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).reason).toBe('CAPABILITY_UNKNOWN');
    await expectInvalid(h.capabilities.get(''), 'capabilityId');
    await expectInvalid(h.capabilities.list('bad provider'), 'provider');
  });

  describe('malformed capabilities are rejected with the field named; the valid neighbour is accepted', () => {
    const cases: {
      rule: string;
      bad: Partial<Capability>;
      field: string;
      good: Partial<Capability>;
    }[] = [
      { rule: 'empty id', bad: { id: '' }, field: 'capability.id', good: {} },
      {
        rule: 'id not provider/tool',
        bad: { id: 'fs/other' },
        field: 'capability.id',
        good: { id: 'fs/read_file' },
      },
      { rule: 'empty provider', bad: { provider: '' }, field: 'capability.provider', good: {} },
      {
        rule: 'provider with a slash',
        bad: { id: 'f/s/read_file', provider: 'f/s' },
        field: 'capability.provider',
        good: {},
      },
      { rule: 'wildcard tool', bad: { id: 'fs/*', tool: '*' }, field: 'capability.tool', good: {} },
      {
        rule: 'tool with a space',
        bad: { id: 'fs/read file', tool: 'read file' },
        field: 'capability.tool',
        good: { id: 'fs/read-file', tool: 'read-file' },
      },
      {
        rule: 'duplicate effect',
        bad: { effects: ['read', 'read'] },
        field: 'capability.effects[1]',
        good: { effects: ['read', 'network'] },
      },
      {
        rule: 'scope with whitespace',
        bad: { requiredScopes: ['a b'] },
        field: 'capability.requiredScopes[0]',
        good: { requiredScopes: ['a:b'] },
      },
      {
        rule: 'empty resource argument name',
        bad: { resourceArguments: [{ name: '', canonicalizer: 'path', role: 'read' }] },
        field: 'capability.resourceArguments[0].name',
        good: { resourceArguments: [{ name: 'file', canonicalizer: 'path', role: 'read' }] },
      },
      {
        rule: 'duplicate resource argument name',
        bad: {
          resourceArguments: [
            { name: 'file', canonicalizer: 'path', role: 'read' },
            { name: 'file', canonicalizer: 'path', role: 'write' },
          ],
        },
        field: 'capability.resourceArguments[1]',
        good: {
          resourceArguments: [
            { name: 'file', canonicalizer: 'path', role: 'read' },
            { name: 'copy', canonicalizer: 'path', role: 'write' },
          ],
        },
      },
      {
        rule: 'more than 16 resource arguments',
        bad: {
          resourceArguments: Array.from({ length: 17 }, (_, i) => ({
            name: `p${i}`,
            canonicalizer: 'path' as const,
            role: 'read' as const,
          })),
        },
        field: 'capability.resourceArguments',
        good: {
          resourceArguments: Array.from({ length: 16 }, (_, i) => ({
            name: `p${i}`,
            canonicalizer: 'path' as const,
            role: 'read' as const,
          })),
        },
      },
      {
        rule: 'unknown resource role',
        bad: {
          resourceArguments: [{ name: 'file', canonicalizer: 'path', role: 'copy' as 'read' }],
        },
        field: 'capability.resourceArguments[0].role',
        good: { resourceArguments: [{ name: 'file', canonicalizer: 'path', role: 'delete' }] },
      },
      {
        rule: 'unknown canonicaliser',
        bad: {
          resourceArguments: [{ name: 'file', canonicalizer: 'glob' as 'path', role: 'read' }],
        },
        field: 'capability.resourceArguments[0].canonicalizer',
        good: { resourceArguments: [{ name: 'file', canonicalizer: 'id', role: 'read' }] },
      },
      {
        rule: 'resource argument scope with whitespace',
        bad: {
          resourceArguments: [{ name: 'to', canonicalizer: 'url', role: 'send', scopes: ['a b'] }],
        },
        field: 'capability.resourceArguments[0].scopes[0]',
        good: {
          resourceArguments: [
            { name: 'to', canonicalizer: 'url', role: 'send', scopes: ['mail'], many: true },
          ],
        },
      },
      {
        rule: 'definition digest not hex',
        bad: { definitionDigest: 'abc' },
        field: 'capability.definitionDigest',
        good: { definitionDigest: 'c'.repeat(64) },
      },
      {
        rule: 'definition digest upper-case',
        bad: { definitionDigest: 'sha256:' + 'C'.repeat(64) },
        field: 'capability.definitionDigest',
        good: { definitionDigest: 'sha256:' + 'c'.repeat(64) },
      },
    ];
    it.each(cases)('$rule', async ({ bad, field, good }) => {
      await expectInvalid(h.capabilities.put({ ...readFile, ...bad }), field);
      await expect(h.capabilities.put({ ...readFile, ...good })).resolves.toMatchObject({
        capability: { ...readFile, ...good },
      });
    });
  });
});
