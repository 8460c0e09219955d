import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { approvalBindingDigest, argumentsDigest } from '@hcp/core';
import {
  callUnary,
  createGrpcClient,
  InProcessBus,
  reasonOfGrpcError,
  type UnaryMethod,
} from '@hcp/platform';
import { core, grants } from '@hcp/proto';
import {
  GRANTS_CHANGED_SUBJECT,
  OPERATOR_METADATA_KEY,
  startGrantStore,
  type RunningGrantStore,
} from './index';
import { freshDatabase, testClock, T0 } from './testing/harness';
import type { Database } from '@hcp/platform';
import type { GrantStoreDb } from './database';

// Over the wire: the real Nest microservice from startGrpcService, called with the generated
// grpc-js client. Every RPC once with valid input and once (or more) with malformed input;
// every failure must be a typed status, never INTERNAL or UNKNOWN.

type Call = UnaryMethod<unknown, unknown>;

const digest = approvalBindingDigest({
  principalId: 'agent-1',
  capabilityId: 'shell/exec',
  canonicalResources: [],
  argumentsDigest: argumentsDigest({ cmd: 'ls' }),
});

const readFile: core.Capability = {
  id: 'fs/read_file',
  provider: 'fs',
  tool: 'read_file',
  effects: [core.Effect.EFFECT_READ],
  risk: core.RiskClass.RISK_CLASS_LOW,
  approvalRequired: false,
  requiredScopes: [],
  resourceArguments: [
    {
      name: 'path',
      canonicalizer: core.ResourceKind.RESOURCE_KIND_PATH,
      role: core.ResourceRole.RESOURCE_ROLE_READ,
      scopes: [],
      many: false,
    },
  ],
  definitionDigest: '',
};
const exec: core.Capability = {
  id: 'shell/exec',
  provider: 'shell',
  tool: 'exec',
  effects: [core.Effect.EFFECT_EXECUTE],
  risk: core.RiskClass.RISK_CLASS_HIGH,
  approvalRequired: true,
  requiredScopes: [],
  resourceArguments: [],
  definitionDigest: 'sha256:' + 'b'.repeat(64),
};

describe('grant-store over gRPC', () => {
  const clock = testClock();
  const bus = new InProcessBus();
  const events: grants.GrantsChangedEvent[] = [];
  let database: Database<GrantStoreDb>;
  let store: RunningGrantStore;
  let client: grants.GrantStoreClient;

  /** A unary call through the platform helper; the method is picked by name so `this` stays bound. */
  function call<K extends keyof grants.GrantStoreClient>(
    method: K,
    request: unknown,
    metadata?: Metadata,
  ): Promise<unknown> {
    const fn = (client[method] as unknown as Call).bind(client);
    return callUnary(fn, request, { deadlineMs: 5000, ...(metadata && { metadata }) });
  }

  /** Expects a typed failure: the status, and the ErrorDetail reason when one is given. */
  async function fails(
    p: Promise<unknown>,
    code: status,
    reason?: string,
    detail?: RegExp,
  ): Promise<void> {
    const err = (await p.then(
      () => undefined,
      (e: unknown) => e,
    )) as ServiceError | undefined;
    expect(err).toBeDefined();
    expect(status[err!.code]).toBe(status[code]);
    if (reason !== undefined) expect(reasonOfGrpcError(err!)?.reason).toBe(reason);
    if (detail !== undefined) expect(err!.details).toMatch(detail);
  }

  const operator = () => {
    const md = new Metadata();
    md.set(OPERATOR_METADATA_KEY, 'operator-1');
    return md;
  };

  beforeAll(async () => {
    await bus.subscribe(GRANTS_CHANGED_SUBJECT, (m) => {
      events.push(grants.GrantsChangedEvent.decode(m.data));
    });
    // An open database (PGlite, or PostgreSQL when the harness variable is set) the spec owns.
    database = await freshDatabase();
    store = await startGrantStore({ db: database, bus, port: 0, clock });
    client = createGrpcClient(grants.GrantStoreClient, store.url);
  });
  afterAll(async () => {
    client?.close();
    await store?.close();
    await database?.close();
    await bus.close();
  });

  it('PutCapability / GetCapability / ListCapabilities', async () => {
    await expect(call('putCapability', { capability: readFile })).resolves.toEqual({
      capability: readFile,
      manifestRevision: 1,
    });
    await expect(call('putCapability', { capability: exec })).resolves.toMatchObject({
      manifestRevision: 2,
    });
    await expect(call('getCapability', { capabilityId: 'shell/exec' })).resolves.toEqual({
      capability: exec,
    });
    await expect(call('listCapabilities', { provider: '' })).resolves.toEqual({
      capabilities: [readFile, exec],
      manifestRevision: 2,
    });
    await expect(call('listCapabilities', { provider: 'fs' })).resolves.toEqual({
      capabilities: [readFile],
      manifestRevision: 2,
    });

    await fails(
      call('putCapability', {}),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^capability: is required/,
    );
    await fails(
      call('putCapability', {
        capability: { ...readFile, risk: core.RiskClass.RISK_CLASS_UNSPECIFIED },
      }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /capability\.risk: RISK_CLASS_UNSPECIFIED/,
    );
    await fails(
      call('putCapability', {
        capability: { ...readFile, effects: [core.Effect.EFFECT_UNSPECIFIED] },
      }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /capability\.effects\[0\]/,
    );
    const pathArg = readFile.resourceArguments[0]!;
    await fails(
      call('putCapability', {
        capability: { ...readFile, resourceArguments: [{ ...pathArg, canonicalizer: 0 }] },
      }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /resourceArguments\[0\]\.canonicalizer/,
    );
    await fails(
      call('putCapability', {
        capability: { ...readFile, resourceArguments: [{ ...pathArg, role: 0 }] },
      }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /resourceArguments\[0\]\.role: RESOURCE_ROLE_UNSPECIFIED/,
    );
    await fails(
      call('putCapability', {
        capability: { ...readFile, requiredScopes: Array.from({ length: 40 }, (_, i) => `s${i}`) },
      }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /requiredScopes/,
    );
    await fails(
      call('getCapability', { capabilityId: 'fs/nope' }),
      status.NOT_FOUND,
      'CAPABILITY_UNKNOWN',
    );
    await fails(
      call('getCapability', { capabilityId: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
    );
    await fails(
      call('listCapabilities', { provider: 'no such/provider' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
    );
  });

  it('CreateGrant / GetGrant / ListGrants / GetPrincipalGrants / RevokeGrant', async () => {
    const request: grants.CreateGrantRequest = {
      principalId: 'agent-1',
      capabilities: ['fs/read_file'],
      resourcePatterns: [
        { pattern: { $case: 'pathPrefix', value: '/data/app' } },
        {
          pattern: {
            $case: 'hostSet',
            value: {
              hosts: ['api.example.com'],
              cidrs: ['10.0.0.0/8'],
              schemes: ['https'],
              ports: [443, 8443],
            },
          },
        },
        { pattern: { $case: 'exactId', value: 'doc-1' } },
      ],
      scopes: ['read'],
      expiresAt: { seconds: T0 / 1000 + 3600, nanos: 0 },
      // Every rule kind, so each survives the round trip through the generated codecs.
      argumentConstraints: [
        {
          argument: 'mode',
          rule: {
            $case: 'oneOf',
            value: {
              values: [
                { value: { $case: 'stringValue', value: 'append' } },
                { value: { $case: 'numberValue', value: 2.5 } },
                { value: { $case: 'boolValue', value: false } },
                { value: { $case: 'nullValue', value: true } },
              ],
            },
          },
        },
        { argument: 'branch', rule: { $case: 'pattern', value: 'feature/[a-z]+' } },
        { argument: 'title', rule: { $case: 'maxLength', value: 80 } },
        { argument: 'n', rule: { $case: 'range', value: { min: 0, max: undefined } } },
        { argument: 'force', rule: { $case: 'absent', value: {} } },
      ],
    };
    events.length = 0;
    const { grant } = (await call('createGrant', request)) as grants.CreateGrantResponse;
    expect(grant).toEqual({
      id: expect.stringMatching(/^grt_/) as unknown,
      principalId: 'agent-1',
      capabilities: ['fs/read_file'],
      resourcePatterns: request.resourcePatterns,
      scopes: ['read'],
      createdAt: { seconds: T0 / 1000, nanos: 0 },
      expiresAt: { seconds: T0 / 1000 + 3600, nanos: 0 },
      revokedAt: undefined,
      revision: 1,
      argumentConstraints: request.argumentConstraints,
    });
    const id = grant!.id;
    await expect(call('getGrant', { grantId: id })).resolves.toEqual({ grant });
    await expect(
      call('listGrants', {
        principalId: 'agent-1',
        includeInactive: false,
        pageSize: 0,
        pageToken: '',
      }),
    ).resolves.toEqual({
      grants: [grant],
      nextPageToken: '',
    });
    await expect(call('getPrincipalGrants', { principalId: 'agent-1' })).resolves.toEqual({
      grants: [grant],
      revision: 1,
    });

    clock.advance(1000);
    const revoked = (await call('revokeGrant', {
      grantId: id,
      reason: 'test',
    })) as grants.RevokeGrantResponse;
    expect(revoked.grant).toEqual({
      ...grant,
      revokedAt: { seconds: T0 / 1000 + 1, nanos: 0 },
      revision: 2,
    });
    await expect(call('revokeGrant', { grantId: id, reason: '' })).resolves.toEqual(revoked);
    await expect(call('getPrincipalGrants', { principalId: 'agent-1' })).resolves.toEqual({
      grants: [],
      revision: 2,
    });
    await new Promise((r) => setImmediate(r));
    expect(events.map((e) => [e.kind, e.principalId, e.revision, e.grantId])).toEqual([
      [grants.GrantChangeKind.GRANT_CHANGE_KIND_CREATED, 'agent-1', 1, id],
      [grants.GrantChangeKind.GRANT_CHANGE_KIND_REVOKED, 'agent-1', 2, id],
    ]);
  });

  it('rejects malformed grant requests with INVALID_ARGUMENT naming the field', async () => {
    const ok: grants.CreateGrantRequest = {
      principalId: 'agent-2',
      capabilities: ['fs/read_file'],
      resourcePatterns: [{ pattern: { $case: 'pathPrefix', value: '/data' } }],
      scopes: [],
      expiresAt: undefined,
      argumentConstraints: [],
    };
    const bad: [Partial<grants.CreateGrantRequest>, RegExp][] = [
      [{ principalId: '' }, /^principalId: is required/],
      [{ capabilities: [] }, /^capabilities: /],
      [{ capabilities: ['fs/delete'] }, /^capabilities\[0\]: unknown capability/],
      [
        { capabilities: Array.from({ length: 100 }, (_, i) => `fs/t${i}`) },
        /^capabilities: has more than 64/,
      ],
      [
        { resourcePatterns: [{ pattern: undefined }] },
        /^resourcePatterns\[0\]: must set exactly one/,
      ],
      [
        { resourcePatterns: [{ pattern: { $case: 'pathPrefix', value: '' } }] },
        /^resourcePatterns\[0\]\.pathPrefix: is required/,
      ],
      [
        { resourcePatterns: [{ pattern: { $case: 'pathPrefix', value: '/a/../b' } }] },
        /^resourcePatterns\[0\]\.pathPrefix/,
      ],
      [
        {
          resourcePatterns: [
            {
              pattern: {
                $case: 'hostSet',
                value: { hosts: [], cidrs: [], schemes: [], ports: [] },
              },
            },
          ],
        },
        /^resourcePatterns\[0\]\.hostSet: needs at least one/,
      ],
      [
        {
          resourcePatterns: [
            {
              pattern: {
                $case: 'hostSet',
                value: { hosts: [], cidrs: ['300.0.0.0/8'], schemes: [], ports: [] },
              },
            },
          ],
        },
        /cidrs\[0\]/,
      ],
      [
        {
          resourcePatterns: [
            {
              pattern: {
                $case: 'hostSet',
                value: {
                  hosts: ['a.example.com'],
                  cidrs: [],
                  schemes: ['http', 'http'],
                  ports: [],
                },
              },
            },
          ],
        },
        /^resourcePatterns\[0\]\.hostSet\.schemes\[1\]: duplicates http/,
      ],
      [
        {
          resourcePatterns: [
            {
              pattern: {
                $case: 'hostSet',
                value: { hosts: ['a.example.com'], cidrs: [], schemes: [], ports: [0] },
              },
            },
          ],
        },
        /^resourcePatterns\[0\]\.hostSet\.ports\[0\]: must be a port 1\.\.65535/,
      ],
      [
        {
          resourcePatterns: Array.from({ length: 65 }, () => ({
            pattern: { $case: 'exactId' as const, value: 'x' },
          })),
        },
        /^resourcePatterns: has more than 64/,
      ],
      [{ scopes: ['a b'] }, /^scopes\[0\]/],
      [
        { argumentConstraints: [{ argument: 'm', rule: undefined }] },
        /^argumentConstraints\[0\]: must set exactly one/,
      ],
      [
        { argumentConstraints: [{ argument: '', rule: { $case: 'absent', value: {} } }] },
        /^argumentConstraints\[0\]\.argument: is required/,
      ],
      [
        { argumentConstraints: [{ argument: 'p', rule: { $case: 'pattern', value: '(?=a)' } }] },
        /^argumentConstraints\[0\]\.pattern: is not a valid RE2 pattern/,
      ],
      [
        {
          argumentConstraints: [{ argument: 'm', rule: { $case: 'oneOf', value: { values: [] } } }],
        },
        /^argumentConstraints\[0\]\.oneOf\.values: needs at least one/,
      ],
      [
        {
          argumentConstraints: [
            { argument: 'n', rule: { $case: 'range', value: { min: 2, max: 1 } } },
          ],
        },
        /^argumentConstraints\[0\]\.range: min is greater than max/,
      ],
      [
        {
          argumentConstraints: [
            {
              argument: 'm',
              rule: {
                $case: 'oneOf',
                value: { values: [{ value: { $case: 'nullValue', value: false } }] },
              },
            },
          ],
        },
        /^argumentConstraints\[0\]\.oneOf\.values\[0\]\.nullValue: must be true/,
      ],
      [
        {
          argumentConstraints: Array.from({ length: 33 }, () => ({
            argument: 'x',
            rule: { $case: 'absent' as const, value: {} },
          })),
        },
        /^argumentConstraints: has more than 32/,
      ],
      [{ expiresAt: { seconds: T0 / 1000 - 1, nanos: 0 } }, /^expiresAt: must be in the future/],
      [{ expiresAt: { seconds: T0 / 1000 + 10, nanos: 1_000_000_000 } }, /^expiresAt\.nanos/],
    ];
    for (const [patch, message] of bad)
      await fails(
        call('createGrant', { ...ok, ...patch }),
        status.INVALID_ARGUMENT,
        'INPUT_INVALID',
        message,
      );
    await expect(call('createGrant', ok)).resolves.toBeDefined();

    await fails(
      call('getGrant', { grantId: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^grantId/,
    );
    await fails(call('getGrant', { grantId: 'grt_nope' }), status.NOT_FOUND);
    await fails(
      call('revokeGrant', { grantId: '', reason: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
    );
    await fails(call('revokeGrant', { grantId: 'grt_nope', reason: '' }), status.NOT_FOUND);
    await fails(
      call('revokeGrant', { grantId: 'g'.repeat(129), reason: '' }),
      status.INVALID_ARGUMENT,
    );
    const list = { principalId: 'agent-2', includeInactive: false, pageSize: 0, pageToken: '' };
    await fails(
      call('listGrants', { ...list, pageToken: 'not-a-token!' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^pageToken/,
    );
    await fails(
      call('listGrants', { ...list, pageToken: 'eyJ2IjoyfQ' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^pageToken/,
    );
    await fails(
      call('listGrants', { ...list, pageSize: -5 }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^pageSize/,
    );
    await fails(
      call('listGrants', { ...list, principalId: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^principalId/,
    );
    await fails(
      call('getPrincipalGrants', { principalId: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^principalId/,
    );
    await fails(
      call('getPrincipalGrants', { principalId: 'x'.repeat(300) }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
    );
  });

  it('RequestApproval / DecideApproval / ConsumeApproval / GetApproval', async () => {
    const req: grants.RequestApprovalRequest = {
      principalId: 'agent-1',
      capabilityId: 'shell/exec',
      bindingDigest: digest,
      ttl: { seconds: 600, nanos: 0 },
      summary: 'run ls',
    };
    const { approval } = (await call('requestApproval', req)) as grants.RequestApprovalResponse;
    expect(approval).toEqual({
      id: expect.stringMatching(/^apr_/) as unknown,
      principalId: 'agent-1',
      capabilityId: 'shell/exec',
      bindingDigest: digest,
      state: core.ApprovalState.APPROVAL_STATE_PENDING,
      expiresAt: { seconds: clock() / 1000 + 600, nanos: 0 },
      consumedAt: undefined,
      decidedBy: '',
    });
    const id = approval!.id;
    await fails(
      call('consumeApproval', { approvalId: id, principalId: 'agent-1', bindingDigest: digest }),
      status.FAILED_PRECONDITION,
      'APPROVAL_REQUIRED',
    );
    await fails(
      call(
        'decideApproval',
        { approvalId: id, verdict: grants.ApprovalVerdict.APPROVAL_VERDICT_UNSPECIFIED },
        operator(),
      ),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^verdict: APPROVAL_VERDICT_UNSPECIFIED/,
    );
    await fails(
      call('decideApproval', {
        approvalId: id,
        verdict: grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE,
      }),
      status.UNAUTHENTICATED,
      'PRINCIPAL_UNAUTHENTICATED',
    );
    const decided = (await call(
      'decideApproval',
      { approvalId: id, verdict: grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE },
      operator(),
    )) as grants.DecideApprovalResponse;
    expect(decided.approval).toMatchObject({
      state: core.ApprovalState.APPROVAL_STATE_APPROVED,
      decidedBy: 'operator-1',
    });
    await fails(
      call(
        'decideApproval',
        { approvalId: id, verdict: grants.ApprovalVerdict.APPROVAL_VERDICT_DENY },
        operator(),
      ),
      status.FAILED_PRECONDITION,
    );
    await fails(
      call('consumeApproval', {
        approvalId: id,
        principalId: 'agent-1',
        bindingDigest: 'sha256:' + '0'.repeat(64),
      }),
      status.FAILED_PRECONDITION,
      'APPROVAL_MISMATCH',
    );

    const consume = { approvalId: id, principalId: 'agent-1', bindingDigest: digest };
    const both = await Promise.allSettled([
      call('consumeApproval', consume),
      call('consumeApproval', consume),
    ]);
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = both.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect((loser?.reason as ServiceError).code).toBe(status.FAILED_PRECONDITION);
    expect(reasonOfGrpcError(loser?.reason as ServiceError)?.reason).toBe('APPROVAL_CONSUMED');

    const got = (await call('getApproval', { approvalId: id })) as grants.GetApprovalResponse;
    expect(got.approval?.consumedAt).toEqual({ seconds: clock() / 1000, nanos: 0 });

    // Expiry through the injected clock.
    const short = (await call('requestApproval', {
      ...req,
      ttl: { seconds: 1, nanos: 0 },
    })) as grants.RequestApprovalResponse;
    await call(
      'decideApproval',
      { approvalId: short.approval!.id, verdict: grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE },
      operator(),
    );
    clock.advance(1000);
    await fails(
      call('consumeApproval', {
        approvalId: short.approval!.id,
        principalId: 'agent-1',
        bindingDigest: digest,
      }),
      status.FAILED_PRECONDITION,
      'APPROVAL_EXPIRED',
    );
  });

  it('rejects malformed approval requests with typed statuses', async () => {
    const req = {
      principalId: 'agent-1',
      capabilityId: 'shell/exec',
      bindingDigest: digest,
      summary: '',
    };
    await fails(
      call('requestApproval', { ...req, bindingDigest: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^bindingDigest/,
    );
    await fails(
      call('requestApproval', { ...req, capabilityId: 'shell/nope' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^capabilityId/,
    );
    await fails(
      call('requestApproval', { ...req, principalId: '' }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^principalId/,
    );
    await fails(
      call('requestApproval', { ...req, ttl: { seconds: -1, nanos: 0 } }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^ttl/,
    );
    await fails(
      call('requestApproval', { ...req, summary: 'x'.repeat(5000) }),
      status.INVALID_ARGUMENT,
      'INPUT_INVALID',
      /^summary/,
    );
    await fails(
      call('decideApproval', { approvalId: '', verdict: 1 }, operator()),
      status.INVALID_ARGUMENT,
    );
    await fails(
      call('decideApproval', { approvalId: 'apr_nope', verdict: 1 }, operator()),
      status.NOT_FOUND,
    );
    await fails(
      call('consumeApproval', { approvalId: '', principalId: '', bindingDigest: '' }),
      status.INVALID_ARGUMENT,
    );
    await fails(
      call('consumeApproval', { approvalId: 'apr_nope', principalId: 'a', bindingDigest: digest }),
      status.NOT_FOUND,
    );
    await fails(call('getApproval', { approvalId: '' }), status.INVALID_ARGUMENT, 'INPUT_INVALID');
    await fails(call('getApproval', { approvalId: 'apr_nope' }), status.NOT_FOUND);
  });
});
