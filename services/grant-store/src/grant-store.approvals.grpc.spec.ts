import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  approvalBindingDigest,
  argumentsDigest,
  type AuditEntry,
  type PrincipalKind,
} from '@hcp/core';
import {
  callUnary,
  createGrpcClient,
  InProcessBus,
  mintToken,
  reasonOfGrpcError,
  type Database,
  type UnaryMethod,
} from '@hcp/platform';
import { RecordingAudit } from '@hcp/platform/testing';
import { capabilityToProto, core, grants } from '@hcp/proto';
import type { GrantStoreDb } from './database';
import { OPERATOR_METADATA_KEY, startGrantStore, type RunningGrantStore } from './index';
import { freshDatabase, MANIFEST, testClock } from './testing/harness';

// Approver authentication over the wire: grant-store started with a token verifier, called with
// real HS256 tokens. Each refusal sits next to the allowed call it differs from in one thing.

const tokens = { issuer: 'hcp-test', audience: 'hcp', hs256Secret: 'k'.repeat(32) };
const APPROVE = grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE;
const DENY = grants.ApprovalVerdict.APPROVAL_VERDICT_DENY;

const digestOf = (principalId: string, cmd: string) =>
  approvalBindingDigest({
    principalId,
    capabilityId: 'shell/exec',
    canonicalResources: [],
    argumentsDigest: argumentsDigest({ cmd }),
  });

describe('grant-store approvals with operator tokens', () => {
  const clock = testClock();
  const bus = new InProcessBus();
  let database: Database<GrantStoreDb>;
  let store: RunningGrantStore;
  let client: grants.GrantStoreClient;

  function call(method: keyof grants.GrantStoreClient, request: unknown, md?: Metadata) {
    const fn = (client[method] as unknown as UnaryMethod<unknown, unknown>).bind(client);
    return callUnary(fn, request, { deadlineMs: 5000, ...(md && { metadata: md }) });
  }
  async function as(id: string, kind: PrincipalKind): Promise<Metadata> {
    const md = new Metadata();
    md.set('authorization', `Bearer ${await mintToken({ id, kind }, tokens)}`);
    return md;
  }
  async function refusal(p: Promise<unknown>): Promise<{ code: string; reason?: string }> {
    const err = (await p.then(
      () => undefined,
      (e: unknown) => e,
    )) as ServiceError | undefined;
    if (err === undefined) throw new Error('expected a refusal');
    const reason = reasonOfGrpcError(err)?.reason;
    return { code: status[err.code], ...(reason !== undefined && { reason }) };
  }
  async function requested(principalId: string, cmd = 'ls'): Promise<string> {
    const res = (await call('requestApproval', {
      principalId,
      capabilityId: 'shell/exec',
      bindingDigest: digestOf(principalId, cmd),
      summary: `run ${cmd}`,
    })) as grants.RequestApprovalResponse;
    return res.approval!.id;
  }
  /** ts-proto's codec writes every field, so partial requests are completed with the defaults first. */
  const list = async (request: Partial<grants.ListApprovalsRequest>, md?: Metadata) =>
    (await call(
      'listApprovals',
      grants.ListApprovalsRequest.fromPartial(request),
      md,
    )) as grants.ListApprovalsResponse;
  const decide = async (approvalId: string, verdict: number, md?: Metadata) =>
    ((await call('decideApproval', { approvalId, verdict }, md)) as grants.DecideApprovalResponse)
      .approval!;

  const audit = new RecordingAudit();
  const audited: AuditEntry[] = audit.entries;

  beforeAll(async () => {
    database = await freshDatabase();
    store = await startGrantStore({
      db: database,
      bus,
      port: 0,
      clock,
      verifier: tokens,
      audit,
    });
    client = createGrpcClient(grants.GrantStoreClient, store.url);
    const exec = MANIFEST.find((c) => c.id === 'shell/exec')!;
    await call('putCapability', { capability: capabilityToProto(exec) });
  });
  afterAll(async () => {
    client?.close();
    await store?.close();
    await database?.close();
    await bus.close();
  });

  /** The decision id a refused call's ErrorDetail names. */
  async function refusedDecisionId(p: Promise<unknown>): Promise<string | undefined> {
    const err = (await p.then(
      () => undefined,
      (e: unknown) => e,
    )) as ServiceError | undefined;
    if (err === undefined) throw new Error('expected a refusal');
    return reasonOfGrpcError(err)?.decisionId;
  }

  it('audits every refused approval decision (agent token, self-approval) as a deny, and the approval itself as an allow', async () => {
    const id = await requested('dave');
    const asAgent = await refusedDecisionId(decide(id, APPROVE, await as('dave', 'agent')));
    const self = await refusedDecisionId(decide(id, APPROVE, await as('dave', 'operator')));
    await decide(id, APPROVE, await as('ops-2', 'operator'));
    const mine = audited.filter(
      (e) => e.endpointFamily === 'approval' && (e.check ?? '').includes('decide'),
    );
    // The invariant is the one table's: a non-approver token is a principal-binding refusal (I4),
    // a self-approval an approval one (I2).
    expect(mine.map((e) => [e.outcome, e.principalId, e.invariant, e.approvalId])).toEqual([
      ['deny', 'dave', 'I4', undefined],
      ['deny', 'dave', 'I2', id],
    ]);
    // Each refusal the caller received names the decision id of its entry.
    expect(asAgent).toMatch(/^dec_/);
    expect(mine.map((e) => e.decisionId)).toEqual([asAgent, self]);
    expect(mine[0]?.reason).toBe('PRINCIPAL_UNAUTHENTICATED');
    expect(audited.some((e) => e.outcome === 'allow' && e.check === 'grant-store.approval')).toBe(
      true,
    );
  });

  it('refuses an agent token (PERMISSION_DENIED) and lets an operator token approve', async () => {
    const id = await requested('alice');
    await expect(refusal(decide(id, APPROVE, await as('alice', 'agent')))).resolves.toEqual({
      code: 'PERMISSION_DENIED',
      reason: 'PRINCIPAL_UNAUTHENTICATED',
    });
    // Another agent is no better than the requester itself, nor is a service.
    await expect(refusal(decide(id, APPROVE, await as('bob', 'agent')))).resolves.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(refusal(decide(id, APPROVE, await as('edge', 'service')))).resolves.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    const approved = await decide(id, APPROVE, await as('ops-1', 'operator'));
    expect(approved).toMatchObject({
      state: core.ApprovalState.APPROVAL_STATE_APPROVED,
      decidedBy: 'ops-1',
    });
  });

  it('takes decided_by from the token, never from hcp-principal-id, and needs a token', async () => {
    const id = await requested('alice', 'pwd');
    const spoofed = new Metadata();
    spoofed.set(OPERATOR_METADATA_KEY, 'ops-1');
    await expect(refusal(decide(id, APPROVE, spoofed))).resolves.toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'PRINCIPAL_UNAUTHENTICATED',
    });
    const both = await as('ops-2', 'operator');
    both.set(OPERATOR_METADATA_KEY, 'ops-1');
    await expect(decide(id, DENY, both)).resolves.toMatchObject({
      state: core.ApprovalState.APPROVAL_STATE_DENIED,
      decidedBy: 'ops-2',
    });
  });

  it('refuses a token from another issuer key', async () => {
    const id = await requested('alice', 'date');
    const forged = new Metadata();
    const token = await mintToken(
      { id: 'ops-1', kind: 'operator' },
      { ...tokens, hs256Secret: 'f'.repeat(32) },
    );
    forged.set('authorization', `Bearer ${token}`);
    await expect(refusal(decide(id, APPROVE, forged))).resolves.toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'PRINCIPAL_UNAUTHENTICATED',
    });
  });

  it('refuses self-approval: an operator token for the very principal the approval is for', async () => {
    // A principal holding both an agent and an operator token still cannot vouch for itself.
    const own = await requested('carol');
    // Typed like the entry that records it.
    await expect(refusal(decide(own, APPROVE, await as('carol', 'operator')))).resolves.toEqual({
      code: 'FAILED_PRECONDITION',
      reason: 'APPROVAL_REQUIRED',
    });
    await expect(decide(own, APPROVE, await as('ops-1', 'operator'))).resolves.toMatchObject({
      decidedBy: 'ops-1',
    });
  });

  it('consumes an approved approval once; a replay is APPROVAL_CONSUMED', async () => {
    const id = await requested('alice', 'whoami');
    await decide(id, APPROVE, await as('ops-1', 'operator'));
    const use = {
      approvalId: id,
      principalId: 'alice',
      bindingDigest: digestOf('alice', 'whoami'),
    };
    await expect(call('consumeApproval', use)).resolves.toMatchObject({
      approval: { id, consumedAt: expect.anything() as unknown },
    });
    await expect(refusal(call('consumeApproval', use))).resolves.toEqual({
      code: 'FAILED_PRECONDITION',
      reason: 'APPROVAL_CONSUMED',
    });
  });

  it('refuses an approval presented for a different call (binding digest) or principal', async () => {
    const id = await requested('alice', 'uptime');
    await decide(id, APPROVE, await as('ops-1', 'operator'));
    const right = {
      approvalId: id,
      principalId: 'alice',
      bindingDigest: digestOf('alice', 'uptime'),
    };
    await expect(
      refusal(call('consumeApproval', { ...right, bindingDigest: digestOf('alice', 'rm -rf /') })),
    ).resolves.toEqual({ code: 'FAILED_PRECONDITION', reason: 'APPROVAL_MISMATCH' });
    await expect(
      refusal(call('consumeApproval', { ...right, principalId: 'bob' })),
    ).resolves.toEqual({ code: 'FAILED_PRECONDITION', reason: 'APPROVAL_MISMATCH' });
    // The mismatches did not use it up: the bound call still goes through, once.
    await expect(call('consumeApproval', right)).resolves.toBeDefined();
  });

  it('ListApprovals: operators see what waits, oldest first, paged; agents are refused', async () => {
    // Start from a clean slate of waiting approvals: decide whatever earlier tests left pending.
    const ops = await as('ops-1', 'operator');
    const first = await list({ pageSize: 200 }, ops);
    for (const a of first.approvals) await decide(a.approval!.id, DENY, ops);

    const ids: string[] = [];
    for (const cmd of ['a', 'b', 'c', 'd', 'e']) ids.push(await requested('dave', cmd));
    const bobs = await requested('bob', 'x');
    await decide(ids[1]!, DENY, ops); // decided: no longer waiting
    const shortLived = (await call('requestApproval', {
      principalId: 'dave',
      capabilityId: 'shell/exec',
      bindingDigest: digestOf('dave', 'short'),
      ttl: { seconds: 1, nanos: 0 },
      summary: '',
    })) as grants.RequestApprovalResponse;
    clock.advance(1000); // expired: no longer waiting either
    expect(shortLived.approval).toBeDefined();

    const page1 = await list({ principalId: '', pageSize: 2, pageToken: '' }, ops);
    expect(page1.approvals.map((a) => a.approval!.id)).toEqual([ids[0], ids[2]]);
    expect(page1.approvals[0]).toMatchObject({
      summary: 'run a',
      createdAt: { seconds: expect.any(Number) as unknown },
      approval: { principalId: 'dave', state: core.ApprovalState.APPROVAL_STATE_PENDING },
    });
    const page2 = await list({ pageSize: 2, pageToken: page1.nextPageToken }, ops);
    expect(page2.approvals.map((a) => a.approval!.id)).toEqual([ids[3], ids[4]]);
    const page3 = await list({ pageSize: 2, pageToken: page2.nextPageToken }, ops);
    expect(page3.approvals.map((a) => a.approval!.id)).toEqual([bobs]);
    expect(page3.nextPageToken).toBe('');

    const onlyBob = await list({ principalId: 'bob' }, ops);
    expect(onlyBob.approvals.map((a) => a.approval!.id)).toEqual([bobs]);
    // A token minted for one filter does not page another.
    await expect(
      refusal(list({ principalId: 'bob', pageToken: page1.nextPageToken }, ops)),
    ).resolves.toEqual({ code: 'INVALID_ARGUMENT', reason: 'INPUT_INVALID' });
    await expect(refusal(list({ pageSize: -1 }, ops))).resolves.toEqual({
      code: 'INVALID_ARGUMENT',
      reason: 'INPUT_INVALID',
    });

    await expect(refusal(list({}, await as('dave', 'agent')))).resolves.toEqual({
      code: 'PERMISSION_DENIED',
      reason: 'PRINCIPAL_UNAUTHENTICATED',
    });
    await expect(refusal(list({}))).resolves.toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'PRINCIPAL_UNAUTHENTICATED',
    });
  });

  it('caps a ListApprovals page at 200', async () => {
    const ops = await as('ops-1', 'operator');
    for (let i = 0; i < 205; i++) await requested('erin', `n${i}`);
    const page = await list({ principalId: 'erin', pageSize: 100_000 }, ops);
    expect(page.approvals).toHaveLength(200);
    expect(page.nextPageToken).not.toBe('');
    const rest = await list(
      { principalId: 'erin', pageSize: 0, pageToken: page.nextPageToken },
      ops,
    );
    expect(rest.approvals).toHaveLength(5);
  });

  it('GetApproval carries the summary and request time an operator decides on', async () => {
    const id = await requested('alice', 'hostname');
    await expect(call('getApproval', { approvalId: id })).resolves.toMatchObject({
      approval: { id, state: core.ApprovalState.APPROVAL_STATE_PENDING },
      summary: 'run hostname',
      createdAt: { seconds: clock() / 1000, nanos: 0 },
    });
  });
});
