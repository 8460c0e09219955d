import { approvalBindingDigest, argumentsDigest, HcpError } from '@hcp/core';
import { grants as pb } from '@hcp/proto';
import {
  DEFAULT_APPROVAL_TTL_MS,
  MAX_APPROVAL_TTL_MS,
  MAX_PENDING_APPROVALS_PER_PRINCIPAL,
  type RequestApprovalInput,
} from './approval.service';
import { FailedPreconditionError, NotFoundError } from './errors';
import { serviceHarness, T0, type ServiceHarness } from './testing/harness';

async function expectInvalid(p: Promise<unknown>, field: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HcpError);
  expect((err as HcpError).reason).toBe('INPUT_INVALID');
  expect((err as HcpError).details['field']).toBe(field);
}

async function expectUnusable(p: Promise<unknown>, reason: string | undefined): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FailedPreconditionError);
  expect((err as FailedPreconditionError).reason).toBe(reason);
}

const digest = approvalBindingDigest({
  principalId: 'agent-1',
  capabilityId: 'shell/exec',
  canonicalResources: [],
  argumentsDigest: argumentsDigest({ cmd: 'rm -rf /tmp/x' }),
});
const otherDigest = approvalBindingDigest({
  principalId: 'agent-1',
  capabilityId: 'shell/exec',
  canonicalResources: [],
  argumentsDigest: argumentsDigest({ cmd: 'rm -rf /' }),
});
const request: RequestApprovalInput = {
  principalId: 'agent-1',
  capabilityId: 'shell/exec',
  bindingDigest: digest,
  summary: 'agent-1 wants to run rm -rf /tmp/x',
};

describe('ApprovalService', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await serviceHarness();
  });
  afterAll(() => h.close());
  beforeEach(async () => {
    await h.reset();
    await h.seedManifest();
  });

  it('runs the lifecycle: request (pending) -> approve -> consume once', async () => {
    const pending = await h.approvals.request(request);
    expect(pending).toEqual({
      id: expect.stringMatching(/^apr_/) as unknown,
      principalId: 'agent-1',
      capabilityId: 'shell/exec',
      bindingDigest: digest,
      state: 'pending',
      expiresAt: T0 + DEFAULT_APPROVAL_TTL_MS,
    });
    await expectUnusable(h.approvals.consume(pending.id, 'agent-1', digest), 'APPROVAL_REQUIRED');
    h.clock.advance(1000);
    const approved = await h.approvals.decide(pending.id, 'approve', 'operator-1');
    expect(approved).toEqual({ ...pending, state: 'approved', decidedBy: 'operator-1' });
    h.clock.advance(1000);
    const consumed = await h.approvals.consume(pending.id, 'agent-1', digest);
    expect(consumed).toEqual({ ...approved, consumedAt: T0 + 2000 });
    await expect(h.approvals.get(pending.id)).resolves.toEqual(consumed);
    await expectUnusable(h.approvals.consume(pending.id, 'agent-1', digest), 'APPROVAL_CONSUMED');
  });

  it('bumps the principal revision and publishes an event for request, decide and consume only', async () => {
    const a = await h.approvals.request(request);
    await h.approvals.decide(a.id, 'approve', 'operator-1');
    await expectUnusable(h.approvals.consume(a.id, 'agent-2', digest), 'APPROVAL_MISMATCH');
    await h.approvals.consume(a.id, 'agent-1', digest);
    await h.settle();
    expect(h.events.map((e) => [e.principalId, e.revision, e.kind, e.grantId])).toEqual([
      ['agent-1', 1, pb.GrantChangeKind.GRANT_CHANGE_KIND_UNSPECIFIED, ''],
      ['agent-1', 2, pb.GrantChangeKind.GRANT_CHANGE_KIND_UNSPECIFIED, ''],
      ['agent-1', 3, pb.GrantChangeKind.GRANT_CHANGE_KIND_UNSPECIFIED, ''],
    ]);
    await expect(h.grants.principalSnapshot('agent-1')).resolves.toEqual({
      grants: [],
      revision: 3,
    });
  });

  it('answers the same call asked again with the request already waiting; another call gets its own', async () => {
    const first = await h.approvals.request(request);
    const again = await h.approvals.request(request);
    expect(again.id).toBe(first.id);
    const other = await h.approvals.request({ ...request, bindingDigest: otherDigest });
    expect(other.id).not.toBe(first.id);
    // Once decided, the same call asks anew (the decided one is no longer waiting).
    await h.approvals.decide(first.id, 'deny', 'operator-1');
    const fresh = await h.approvals.request(request);
    expect(fresh.id).not.toBe(first.id);
  });

  it('refuses more than MAX_PENDING_APPROVALS_PER_PRINCIPAL waiting requests of one principal, not of another', async () => {
    for (let i = 0; i < MAX_PENDING_APPROVALS_PER_PRINCIPAL; i++) {
      await h.approvals.request({
        ...request,
        bindingDigest: approvalBindingDigest({
          principalId: 'agent-1',
          capabilityId: 'shell/exec',
          canonicalResources: [],
          argumentsDigest: argumentsDigest({ i }),
        }),
      });
    }
    await expectInvalid(
      h.approvals.request({ ...request, bindingDigest: otherDigest }),
      'principalId',
    );
    await expect(
      h.approvals.request({ ...request, principalId: 'agent-2' }),
    ).resolves.toMatchObject({ state: 'pending' });
  });

  it('lets exactly one of two concurrent consumers win', async () => {
    const a = await h.approvals.request(request);
    await h.approvals.decide(a.id, 'approve', 'operator-1');
    const results = await Promise.allSettled([
      h.approvals.consume(a.id, 'agent-1', digest),
      h.approvals.consume(a.id, 'agent-1', digest),
      h.approvals.consume(a.id, 'agent-1', digest),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(2);
    for (const l of lost) {
      expect(l.reason).toBeInstanceOf(FailedPreconditionError);
      expect((l.reason as FailedPreconditionError).reason).toBe('APPROVAL_CONSUMED');
    }
  });

  it('refuses a call bound differently (APPROVAL_MISMATCH) and leaves the approval usable', async () => {
    const a = await h.approvals.request(request);
    await h.approvals.decide(a.id, 'approve', 'operator-1');
    await expectUnusable(h.approvals.consume(a.id, 'agent-1', otherDigest), 'APPROVAL_MISMATCH');
    await expectUnusable(h.approvals.consume(a.id, 'agent-2', digest), 'APPROVAL_MISMATCH');
    await expect(h.approvals.consume(a.id, 'agent-1', digest)).resolves.toMatchObject({
      consumedAt: T0,
    });
  });

  it('expires: an approved approval past its TTL is APPROVAL_EXPIRED, a pending one cannot be decided', async () => {
    const a = await h.approvals.request({ ...request, ttlMs: 60_000 });
    const b = await h.approvals.request({ ...request, bindingDigest: otherDigest, ttlMs: 60_000 });
    await h.approvals.decide(a.id, 'approve', 'operator-1');
    h.clock.advance(59_999);
    await expect(h.approvals.get(a.id)).resolves.toMatchObject({ state: 'approved' });
    h.clock.advance(1);
    await expectUnusable(h.approvals.consume(a.id, 'agent-1', digest), 'APPROVAL_EXPIRED');
    await expectUnusable(h.approvals.decide(b.id, 'approve', 'operator-1'), 'APPROVAL_EXPIRED');
  });

  it('denies: a denied approval cannot be consumed or decided again', async () => {
    const a = await h.approvals.request(request);
    const denied = await h.approvals.decide(a.id, 'deny', 'operator-1');
    expect(denied).toMatchObject({ state: 'denied', decidedBy: 'operator-1' });
    await expectUnusable(h.approvals.consume(a.id, 'agent-1', digest), 'APPROVAL_REQUIRED');
    await expectUnusable(h.approvals.decide(a.id, 'approve', 'operator-1'), undefined);
  });

  it('refuses self-approval', async () => {
    const a = await h.approvals.request(request);
    await expectUnusable(h.approvals.decide(a.id, 'approve', 'agent-1'), undefined);
    await expect(h.approvals.get(a.id)).resolves.toMatchObject({ state: 'pending' });
  });

  it('caps the TTL at the store maximum', async () => {
    const a = await h.approvals.request({ ...request, ttlMs: 10 * MAX_APPROVAL_TTL_MS });
    expect(a.expiresAt).toBe(T0 + MAX_APPROVAL_TTL_MS);
  });

  it('answers NotFoundError for unknown ids', async () => {
    await expect(h.approvals.get('apr_missing')).rejects.toBeInstanceOf(NotFoundError);
    await expect(h.approvals.decide('apr_missing', 'approve', 'op')).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(h.approvals.consume('apr_missing', 'agent-1', digest)).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  describe('malformed requests are rejected with the field named; the valid neighbour is accepted', () => {
    const cases: {
      rule: string;
      bad: Partial<RequestApprovalInput>;
      field: string;
      good: Partial<RequestApprovalInput>;
    }[] = [
      { rule: 'empty principal', bad: { principalId: '' }, field: 'principalId', good: {} },
      { rule: 'empty capability', bad: { capabilityId: '' }, field: 'capabilityId', good: {} },
      {
        rule: 'unknown capability',
        bad: { capabilityId: 'shell/sudo' },
        field: 'capabilityId',
        good: { capabilityId: 'fs/read_file' },
      },
      {
        rule: 'wildcard capability',
        bad: { capabilityId: 'shell/*' },
        field: 'capabilityId',
        good: { capabilityId: 'shell/exec' },
      },
      { rule: 'empty digest', bad: { bindingDigest: '' }, field: 'bindingDigest', good: {} },
      {
        rule: 'digest not sha256:hex',
        bad: { bindingDigest: 'a'.repeat(64) },
        field: 'bindingDigest',
        good: { bindingDigest: 'sha256:' + 'a'.repeat(64) },
      },
      { rule: 'zero TTL', bad: { ttlMs: 0 }, field: 'ttl', good: { ttlMs: 1 } },
      { rule: 'negative TTL', bad: { ttlMs: -5 }, field: 'ttl', good: { ttlMs: 5 } },
      {
        rule: 'summary too long',
        bad: { summary: 's'.repeat(2001) },
        field: 'summary',
        good: { summary: 's'.repeat(2000) },
      },
    ];
    it.each(cases)('$rule', async ({ bad, field, good }) => {
      await expectInvalid(h.approvals.request({ ...request, ...bad }), field);
      await expect(h.approvals.request({ ...request, ...good })).resolves.toMatchObject({
        state: 'pending',
      });
    });

    it('consume and decide name their fields too', async () => {
      await expectInvalid(h.approvals.consume('', 'agent-1', digest), 'approvalId');
      await expectInvalid(h.approvals.consume('apr_x', '', digest), 'principalId');
      await expectInvalid(h.approvals.consume('apr_x', 'agent-1', 'nope'), 'bindingDigest');
      await expectInvalid(h.approvals.decide('', 'approve', 'op'), 'approvalId');
      await expectInvalid(h.approvals.get(''), 'approvalId');
    });
  });
});
