import { sql } from 'kysely';
import { HcpError, type ArgumentConstraint, type ResourcePattern } from '@hcp/core';
import { InProcessBus, type BusHeaders, type EventBus } from '@hcp/platform';
import { grants as pb } from '@hcp/proto';
import { NotFoundError } from './errors';
import type { CreateGrantInput } from './grant.service';
import { serviceHarness, T0, type ServiceHarness } from './testing/harness';

const Kind = pb.GrantChangeKind;

/** Asserts an INPUT_INVALID rejection naming exactly this field. */
async function expectInvalid(p: Promise<unknown>, field: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HcpError);
  const e = err as HcpError;
  expect(e.reason).toBe('INPUT_INVALID');
  expect(e.details['field']).toBe(field);
  expect(e.message.startsWith(`${field}: `)).toBe(true);
}

const base: CreateGrantInput = {
  principalId: 'agent-1',
  capabilities: ['fs/read_file'],
  resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app' }],
  scopes: [],
};
const path = (prefix: string): ResourcePattern[] => [{ kind: 'path_prefix', prefix }];
const hosts = (h: string[], cidrs: string[] = []): ResourcePattern[] => [
  { kind: 'host_set', hosts: h, cidrs },
];

describe('GrantService', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await serviceHarness();
  });
  afterAll(() => h.close());
  beforeEach(async () => {
    await h.reset();
    await h.seedManifest();
  });

  describe('create / get / list / revoke', () => {
    it('creates a grant with id, createdAt and the principal revision, and reads it back', async () => {
      const grant = await h.grants.create({
        ...base,
        scopes: ['write'],
        expiresAt: T0 + 60_000,
      });
      expect(grant).toEqual({
        id: expect.stringMatching(/^grt_/) as unknown,
        principalId: 'agent-1',
        capabilities: ['fs/read_file'],
        resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app' }],
        scopes: ['write'],
        createdAt: T0,
        expiresAt: T0 + 60_000,
        revision: 1,
      });
      await expect(h.grants.get(grant.id)).resolves.toEqual(grant);
    });

    it('stores argument constraints of every kind and returns them on every read path', async () => {
      const argumentConstraints: ArgumentConstraint[] = [
        { argument: 'mode', kind: 'one_of', values: ['append', 1, true, null] },
        { argument: 'branch', kind: 'pattern', pattern: 'feature/[a-z0-9-]+' },
        { argument: 'title', kind: 'max_length', maxLength: 80 },
        { argument: 'n', kind: 'range', min: 0.5 },
        { argument: 'force', kind: 'absent' },
      ];
      const grant = await h.grants.create({ ...base, argumentConstraints });
      expect(grant.argumentConstraints).toEqual(argumentConstraints);
      await expect(h.grants.get(grant.id)).resolves.toEqual(grant);
      const snap = await h.grants.principalSnapshot('agent-1');
      expect(snap.grants).toEqual([grant]);
      // An unconstrained grant stays without the field (not an empty list).
      const plain = await h.grants.create({ ...base, argumentConstraints: [] });
      expect(plain).not.toHaveProperty('argumentConstraints');
      await expect(h.grants.get(plain.id)).resolves.toEqual(plain);
    });

    it('stores every pattern kind and provider wildcards', async () => {
      const grant = await h.grants.create({
        ...base,
        capabilities: ['fs/*', 'http/fetch'],
        resourcePatterns: [
          { kind: 'path_prefix', prefix: '/' },
          {
            kind: 'host_set',
            hosts: ['api.example.com', '*.cdn.example.com'],
            cidrs: ['10.0.0.0/8', 'fd00::/8'],
          },
          { kind: 'exact_id', id: 'doc-42' },
        ],
      });
      await expect(h.grants.get(grant.id)).resolves.toEqual(grant);
    });

    it('revokes once; revoking again returns the same grant and writes nothing', async () => {
      const grant = await h.grants.create(base);
      h.clock.advance(5000);
      const revoked = await h.grants.revoke(grant.id, 'left the team');
      expect(revoked).toEqual({ ...grant, revokedAt: T0 + 5000, revision: 2 });
      h.clock.advance(5000);
      await expect(h.grants.revoke(grant.id, 'again')).resolves.toEqual(revoked);
      await h.settle();
      expect(h.events.map((e) => [e.kind, e.revision])).toEqual([
        [Kind.GRANT_CHANGE_KIND_CREATED, 1],
        [Kind.GRANT_CHANGE_KIND_REVOKED, 2],
      ]);
      await expect(h.grants.get(grant.id)).resolves.toEqual(revoked);
      // Each committed change is an audit entry too (I7); the no-op second revoke is not.
      const changes = h.auditEntries.filter((e) => e.matchedGrantId === grant.id);
      expect(changes.map((e) => [e.endpointFamily, e.check, e.principalId])).toEqual([
        ['grant', 'grant-store.created', grant.principalId],
        ['grant', 'grant-store.revoked', grant.principalId],
      ]);
    });

    it('answers NotFoundError for unknown ids and INPUT_INVALID for empty ones', async () => {
      await expect(h.grants.get('grt_missing')).rejects.toBeInstanceOf(NotFoundError);
      await expect(h.grants.revoke('grt_missing', '')).rejects.toBeInstanceOf(NotFoundError);
      await expectInvalid(h.grants.get(''), 'grantId');
      await expectInvalid(h.grants.revoke('', ''), 'grantId');
      await expectInvalid(h.grants.revoke('grt_x', 'x'.repeat(1025)), 'reason');
    });

    it('lists a principal’s grants in creation order, a page at a time', async () => {
      const created = [];
      for (let i = 0; i < 5; i++) created.push(await h.grants.create(base));
      await h.grants.create({ ...base, principalId: 'agent-2' });
      const ids: string[] = [];
      let token = '';
      let pages = 0;
      do {
        const page = await h.grants.list({
          principalId: 'agent-1',
          includeInactive: false,
          pageSize: 2,
          pageToken: token,
        });
        ids.push(...page.grants.map((g) => g.id));
        token = page.nextPageToken;
        pages++;
      } while (token !== '');
      expect(pages).toBe(3);
      expect(ids).toEqual(created.map((g) => g.id));
    });

    it('lists live grants by default and every grant with includeInactive', async () => {
      const live = await h.grants.create(base);
      const revoked = await h.grants.create(base);
      const expiring = await h.grants.create({ ...base, expiresAt: T0 + 1000 });
      await h.grants.revoke(revoked.id, '');
      h.clock.advance(1000);
      const q = { principalId: 'agent-1', pageSize: 0, pageToken: '' };
      const active = await h.grants.list({ ...q, includeInactive: false });
      expect(active.grants.map((g) => g.id)).toEqual([live.id]);
      const all = await h.grants.list({ ...q, includeInactive: true });
      expect(all.grants.map((g) => g.id)).toEqual([live.id, revoked.id, expiring.id]);
      expect(all.nextPageToken).toBe('');
    });

    it('rejects malformed list requests with the field named', async () => {
      await h.grants.create(base);
      await h.grants.create(base);
      const q = { principalId: 'agent-1', includeInactive: false, pageSize: 1, pageToken: '' };
      const first = await h.grants.list(q);
      expect(first.nextPageToken).not.toBe('');
      await expect(h.grants.list({ ...q, pageToken: first.nextPageToken })).resolves.toMatchObject({
        nextPageToken: '',
      });
      await expectInvalid(h.grants.list({ ...q, principalId: '' }), 'principalId');
      await expectInvalid(h.grants.list({ ...q, pageSize: -1 }), 'pageSize');
      await expectInvalid(h.grants.list({ ...q, pageToken: 'garbage!' }), 'pageToken');
      await expectInvalid(h.grants.list({ ...q, pageToken: 'Z2FyYmFnZQ' }), 'pageToken');
      await expectInvalid(
        h.grants.list({ ...q, principalId: 'agent-2', pageToken: first.nextPageToken }),
        'pageToken',
      );
      await expectInvalid(
        h.grants.list({ ...q, includeInactive: true, pageToken: first.nextPageToken }),
        'pageToken',
      );
    });
  });

  describe('malformed grants are rejected with the field named; the valid neighbour is accepted', () => {
    const cases: {
      rule: string;
      bad: Partial<CreateGrantInput>;
      field: string;
      good: Partial<CreateGrantInput>;
    }[] = [
      {
        rule: 'empty principal',
        bad: { principalId: '' },
        field: 'principalId',
        good: { principalId: 'a' },
      },
      {
        rule: 'control character in principal',
        bad: { principalId: 'a\nb' },
        field: 'principalId',
        good: { principalId: 'a b' },
      },
      {
        rule: 'principal with surrounding space',
        bad: { principalId: ' a' },
        field: 'principalId',
        good: { principalId: 'a' },
      },
      {
        rule: 'principal too long',
        bad: { principalId: 'p'.repeat(257) },
        field: 'principalId',
        good: { principalId: 'p'.repeat(256) },
      },
      {
        rule: 'no capabilities',
        bad: { capabilities: [] },
        field: 'capabilities',
        good: { capabilities: ['fs/read_file'] },
      },
      {
        rule: 'unknown capability',
        bad: { capabilities: ['fs/read_file', 'fs/delete_file'] },
        field: 'capabilities[1]',
        good: { capabilities: ['fs/read_file', 'fs/write_file'] },
      },
      {
        rule: 'wildcard of a provider without capabilities',
        bad: { capabilities: ['mail/*'] },
        field: 'capabilities[0]',
        good: { capabilities: ['fs/*'] },
      },
      {
        rule: 'capability not provider/tool',
        bad: { capabilities: ['read_file'] },
        field: 'capabilities[0]',
        good: { capabilities: ['fs/read_file'] },
      },
      {
        rule: 'capability with two slashes',
        bad: { capabilities: ['fs/read/file'] },
        field: 'capabilities[0]',
        good: { capabilities: ['fs/read_file'] },
      },
      {
        rule: 'duplicate capability',
        bad: { capabilities: ['fs/read_file', 'fs/read_file'] },
        field: 'capabilities[1]',
        good: { capabilities: ['fs/read_file', 'fs/*'] },
      },
      {
        rule: 'too many capabilities',
        bad: { capabilities: Array.from({ length: 65 }, (_, i) => `fs/t${i}`) },
        field: 'capabilities',
        good: {},
      },
      {
        rule: 'empty path prefix',
        bad: { resourcePatterns: path('') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/') },
      },
      {
        rule: 'relative path prefix',
        bad: { resourcePatterns: path('data/app') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/data/app') },
      },
      {
        rule: 'path prefix with ..',
        bad: { resourcePatterns: path('/data/../etc') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/data/..etc') },
      },
      {
        rule: 'path prefix with .',
        bad: { resourcePatterns: path('/data/./app') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/data/.app') },
      },
      {
        rule: 'path prefix with repeated slashes',
        bad: { resourcePatterns: path('/data//app') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/data/app') },
      },
      {
        rule: 'path prefix with trailing slash',
        bad: { resourcePatterns: path('/data/app/') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/data/app') },
      },
      {
        rule: 'path prefix with NUL',
        bad: { resourcePatterns: path('/data/a\u0000') },
        field: 'resourcePatterns[0].pathPrefix',
        good: { resourcePatterns: path('/data/a') },
      },
      {
        rule: 'host set with nothing in it',
        bad: { resourcePatterns: hosts([]) },
        field: 'resourcePatterns[0].hostSet',
        good: { resourcePatterns: hosts(['api.example.com']) },
      },
      {
        rule: 'upper-case host',
        bad: { resourcePatterns: hosts(['API.example.com']) },
        field: 'resourcePatterns[0].hostSet.hosts[0]',
        good: { resourcePatterns: hosts(['api.example.com']) },
      },
      {
        rule: 'host with a scheme',
        bad: { resourcePatterns: hosts(['https://api.example.com']) },
        field: 'resourcePatterns[0].hostSet.hosts[0]',
        good: { resourcePatterns: hosts(['api.example.com']) },
      },
      {
        rule: 'wildcard host over a TLD',
        bad: { resourcePatterns: hosts(['*.com']) },
        field: 'resourcePatterns[0].hostSet.hosts[0]',
        good: { resourcePatterns: hosts(['*.example.com']) },
      },
      {
        rule: 'CIDR prefix too long',
        bad: { resourcePatterns: hosts([], ['10.0.0.0/33']) },
        field: 'resourcePatterns[0].hostSet.cidrs[0]',
        good: { resourcePatterns: hosts([], ['10.0.0.0/32']) },
      },
      {
        rule: 'CIDR with a short address',
        bad: { resourcePatterns: hosts([], ['10.0.0/8']) },
        field: 'resourcePatterns[0].hostSet.cidrs[0]',
        good: { resourcePatterns: hosts([], ['10.0.0.0/8']) },
      },
      {
        rule: 'CIDR without prefix',
        bad: { resourcePatterns: hosts([], ['fd00::']) },
        field: 'resourcePatterns[0].hostSet.cidrs[0]',
        good: { resourcePatterns: hosts([], ['fd00::/8']) },
      },
      {
        rule: 'IPv6 CIDR prefix too long',
        bad: { resourcePatterns: hosts([], ['fd00::/129']) },
        field: 'resourcePatterns[0].hostSet.cidrs[0]',
        good: { resourcePatterns: hosts([], ['fd00::/128']) },
      },
      {
        rule: 'second pattern bad',
        bad: { resourcePatterns: [...path('/a'), { kind: 'exact_id', id: '' }] },
        field: 'resourcePatterns[1].exactId',
        good: { resourcePatterns: [...path('/a'), { kind: 'exact_id', id: 'doc-1' }] },
      },
      {
        rule: 'too many patterns',
        bad: { resourcePatterns: Array.from({ length: 65 }, (_, i) => path(`/p${i}`)[0]!) },
        field: 'resourcePatterns',
        good: { resourcePatterns: Array.from({ length: 64 }, (_, i) => path(`/p${i}`)[0]!) },
      },
      {
        rule: 'scope with whitespace',
        bad: { scopes: ['read write'] },
        field: 'scopes[0]',
        good: { scopes: ['read:write'] },
      },
      {
        rule: 'empty scope',
        bad: { scopes: ['write', ''] },
        field: 'scopes[1]',
        good: { scopes: ['write', 'read'] },
      },
      {
        rule: 'duplicate scope',
        bad: { scopes: ['write', 'write'] },
        field: 'scopes[1]',
        good: { scopes: ['write'] },
      },
      {
        rule: 'too many scopes',
        bad: { scopes: Array.from({ length: 33 }, (_, i) => `s${i}`) },
        field: 'scopes',
        good: { scopes: Array.from({ length: 32 }, (_, i) => `s${i}`) },
      },
      {
        rule: 'scope too long',
        bad: { scopes: ['s'.repeat(129)] },
        field: 'scopes[0]',
        good: { scopes: ['s'.repeat(128)] },
      },
      {
        rule: 'expiry in the past',
        bad: { expiresAt: T0 - 1 },
        field: 'expiresAt',
        good: { expiresAt: T0 + 1 },
      },
      {
        rule: 'expiry now',
        bad: { expiresAt: T0 },
        field: 'expiresAt',
        good: { expiresAt: T0 + 1000 },
      },
      {
        rule: 'constraint without an argument name',
        bad: { argumentConstraints: [{ argument: '', kind: 'absent' }] },
        field: 'argumentConstraints[0].argument',
        good: { argumentConstraints: [{ argument: 'force', kind: 'absent' }] },
      },
      {
        rule: 'pattern RE2 refuses (lookahead)',
        bad: { argumentConstraints: [{ argument: 'b', kind: 'pattern', pattern: '(?!main).*' }] },
        field: 'argumentConstraints[0].pattern',
        good: { argumentConstraints: [{ argument: 'b', kind: 'pattern', pattern: 'feature/.*' }] },
      },
      {
        rule: 'pattern too long',
        bad: {
          argumentConstraints: [{ argument: 'b', kind: 'pattern', pattern: 'a'.repeat(257) }],
        },
        field: 'argumentConstraints[0].pattern',
        good: {
          argumentConstraints: [{ argument: 'b', kind: 'pattern', pattern: 'a'.repeat(256) }],
        },
      },
      {
        rule: 'empty one_of',
        bad: { argumentConstraints: [{ argument: 'm', kind: 'one_of', values: [] }] },
        field: 'argumentConstraints[0].oneOf.values',
        good: { argumentConstraints: [{ argument: 'm', kind: 'one_of', values: ['append'] }] },
      },
      {
        rule: 'range without bounds',
        bad: { argumentConstraints: [{ argument: 'n', kind: 'range' }] },
        field: 'argumentConstraints[0].range',
        good: { argumentConstraints: [{ argument: 'n', kind: 'range', max: 10 }] },
      },
      {
        rule: 'too many constraints',
        bad: {
          argumentConstraints: Array.from({ length: 33 }, () => ({
            argument: 'x',
            kind: 'absent' as const,
          })),
        },
        field: 'argumentConstraints',
        good: {
          argumentConstraints: Array.from({ length: 32 }, () => ({
            argument: 'x',
            kind: 'absent' as const,
          })),
        },
      },
    ];

    it.each(cases)('$rule', async ({ bad, field, good }) => {
      await expectInvalid(h.grants.create({ ...base, ...bad }), field);
      const stored = await h.grants.create({ ...base, ...good });
      expect(stored.id).toMatch(/^grt_/);
    });

    it('writes nothing and publishes nothing for a rejected grant', async () => {
      await expectInvalid(
        h.grants.create({ ...base, capabilities: ['fs/nope'] }),
        'capabilities[0]',
      );
      await h.settle();
      expect(h.events).toEqual([]);
      await expect(h.grants.principalSnapshot('agent-1')).resolves.toEqual({
        grants: [],
        revision: 0,
      });
    });
  });

  describe('revisions and hcp.grants.changed', () => {
    it('bumps the principal revision on every write and publishes a decodable event for each', async () => {
      const g1 = await h.grants.create(base);
      h.clock.advance(10);
      const g2 = await h.grants.create(base);
      const other = await h.grants.create({ ...base, principalId: 'agent-2' });
      h.clock.advance(10);
      await h.grants.revoke(g1.id, 'x');
      await h.settle();
      expect([g1.revision, g2.revision, other.revision]).toEqual([1, 2, 1]);
      expect(h.events).toEqual([
        {
          principalId: 'agent-1',
          revision: 1,
          grantId: g1.id,
          kind: Kind.GRANT_CHANGE_KIND_CREATED,
          capabilityId: '',
          changedAt: { seconds: T0 / 1000, nanos: 0 },
        },
        {
          principalId: 'agent-1',
          revision: 2,
          grantId: g2.id,
          kind: Kind.GRANT_CHANGE_KIND_CREATED,
          capabilityId: '',
          changedAt: { seconds: T0 / 1000, nanos: 10_000_000 },
        },
        {
          principalId: 'agent-2',
          revision: 1,
          grantId: other.id,
          kind: Kind.GRANT_CHANGE_KIND_CREATED,
          capabilityId: '',
          changedAt: { seconds: T0 / 1000, nanos: 10_000_000 },
        },
        {
          principalId: 'agent-1',
          revision: 3,
          grantId: g1.id,
          kind: Kind.GRANT_CHANGE_KIND_REVOKED,
          capabilityId: '',
          changedAt: { seconds: T0 / 1000, nanos: 20_000_000 },
        },
      ]);
      await expect(h.grants.principalSnapshot('agent-1')).resolves.toMatchObject({ revision: 3 });
    });

    it('publishes only after commit: the event’s revision is already visible to a fresh reader', async () => {
      const seen: { revision: number; visible: number }[] = [];
      const probe = await serviceHarness({
        bus: new ProbeBus(async (data) => {
          const ev = pb.GrantsChangedEvent.decode(data);
          if (ev.principalId === '') return; // manifest changes are checked in capability.service.spec
          const row = await probe.database.db
            .selectFrom('principal_revisions')
            .select('revision')
            .where('principal_id', '=', ev.principalId)
            .executeTakeFirst();
          seen.push({ revision: ev.revision, visible: Number(row?.revision ?? 0) });
        }),
      });
      try {
        await probe.seedManifest();
        const g = await probe.grants.create(base);
        await probe.grants.revoke(g.id, '');
        expect(seen).toEqual([
          { revision: 1, visible: 1 },
          { revision: 2, visible: 2 },
        ]);
      } finally {
        await probe.close();
      }
    });

    it('publishes nothing and stores nothing when the transaction fails', async () => {
      const db = h.database.db;
      await sql`create or replace function fail_revision() returns trigger language plpgsql as $$ begin raise exception 'injected failure'; end $$`.execute(
        db,
      );
      await sql`create trigger fail_revision before insert or update on principal_revisions for each row execute function fail_revision()`.execute(
        db,
      );
      try {
        await expect(h.grants.create(base)).rejects.toThrow(/injected failure/);
      } finally {
        await sql`drop trigger fail_revision on principal_revisions`.execute(db);
      }
      await h.settle();
      expect(h.events).toEqual([]);
      const count = await db
        .selectFrom('grants')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(0);
    });

    it('a publish failure after commit is logged, not thrown: the write stands', async () => {
      let down = false;
      const broken = await serviceHarness({
        bus: new ProbeBus(() =>
          down ? Promise.reject(new Error('nats down')) : Promise.resolve(),
        ),
      });
      try {
        await broken.seedManifest();
        down = true; // the expected error line is logged once, for this write
        const g = await broken.grants.create(base);
        await expect(broken.grants.get(g.id)).resolves.toEqual(g);
      } finally {
        await broken.close();
      }
    });
  });

  describe('principalSnapshot (GetPrincipalGrants)', () => {
    it('returns only live grants with the revision they reflect', async () => {
      const live = await h.grants.create(base);
      const forever = await h.grants.create({ ...base, capabilities: ['fs/*'] });
      const revoked = await h.grants.create(base);
      await h.grants.create({ ...base, expiresAt: T0 + 1000 });
      await h.grants.revoke(revoked.id, '');
      await h.grants.create({ ...base, principalId: 'agent-2' });
      h.clock.advance(1000);
      const snap = await h.grants.principalSnapshot('agent-1');
      expect(snap.revision).toBe(5);
      expect(snap.grants.map((g) => g.id)).toEqual([live.id, forever.id]);
    });

    it('returns revision 0 and no grants for a principal never written', async () => {
      await expect(h.grants.principalSnapshot('nobody')).resolves.toEqual({
        grants: [],
        revision: 0,
      });
      await expectInvalid(h.grants.principalSnapshot(''), 'principalId');
    });

    it('keeps the revision after every grant is revoked', async () => {
      const g = await h.grants.create(base);
      await h.grants.revoke(g.id, '');
      await expect(h.grants.principalSnapshot('agent-1')).resolves.toEqual({
        grants: [],
        revision: 2,
      });
    });
  });
});

/** An in-process bus whose publish runs a probe first (to look at the database or to fail). */
class ProbeBus extends InProcessBus implements EventBus {
  constructor(private readonly probe: (data: Uint8Array) => Promise<void>) {
    super();
  }
  override async publish(subject: string, data: Uint8Array, headers?: BusHeaders): Promise<void> {
    await this.probe(data);
    return super.publish(subject, data, headers);
  }
}
