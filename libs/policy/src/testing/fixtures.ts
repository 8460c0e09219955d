import {
  boundResourcesOf,
  type ArgumentResource,
  approvalBindingDigest,
  argumentsDigest,
  type Approval,
  type Capability,
  type Grant,
  type HandleRecord,
  type InvariantId,
  type Outcome,
  type Principal,
  type ReasonCode,
  type ResourceFacts,
  type SessionFacts,
} from '@hcp/core';
import type { CallFacts, DecideRequest, PeekRequest, PipeRequest, PolicyContext } from '../request';

/**
 * Decision fixtures: a small world (principals, manifest, grants) and requests
 * with the decision each must get. The engine spec runs them; the PDP service
 * and the edge reuse them so every layer is pinned to the same behaviour.
 */

/** A fixed clock so fixtures are deterministic. */
export const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;

/** Protocol versions the fixture world supports. */
export const FIXTURE_VERSIONS = ['2025-03-26', '2025-06-18', '2025-11-25'] as const;

export const ALICE: Principal = { id: 'alice', kind: 'agent' };
export const BOB: Principal = { id: 'bob', kind: 'agent' };

/** Pinned digest of the read tool's definition. */
export const READ_DEFINITION_DIGEST = 'sha256:' + 'a'.repeat(64);

const cap = (c: Omit<Capability, 'provider' | 'tool'>): Capability => {
  const [provider = '', tool = ''] = c.id.split('/');
  return { ...c, provider, tool };
};

/** The capability manifest of the fixture world. */
export const CAPABILITIES: readonly Capability[] = [
  cap({
    id: 'fs/read_file',
    effects: ['read'],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: ['fs:read'],
    resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
    definitionDigest: READ_DEFINITION_DIGEST,
  }),
  cap({
    id: 'fs/write_file',
    effects: ['write'],
    risk: 'high',
    approvalRequired: true,
    requiredScopes: ['fs:write'],
    resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'write' }],
  }),
  cap({
    id: 'fs/move_file',
    effects: ['write', 'delete'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: ['fs:write'],
    resourceArguments: [
      { name: 'source', canonicalizer: 'path', role: 'delete', scopes: ['fs:read'] },
      { name: 'destination', canonicalizer: 'path', role: 'write' },
    ],
  }),
  cap({
    id: 'fs/read_multiple_files',
    effects: ['read'],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: ['fs:read'],
    resourceArguments: [{ name: 'paths', canonicalizer: 'path', role: 'read', many: true }],
  }),
  cap({
    id: 'fetch/fetch',
    effects: ['network'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: ['net:fetch'],
    resourceArguments: [{ name: 'url', canonicalizer: 'url', role: 'fetch' }],
  }),
  cap({
    id: 'notes/get',
    effects: ['read'],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: ['notes:read'],
    resourceArguments: [{ name: 'id', canonicalizer: 'id', role: 'read' }],
  }),
  cap({
    id: 'mail/send',
    effects: ['network'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: ['mail:send'],
    resourceArguments: [{ name: 'to', canonicalizer: 'id', role: 'send' }],
  }),
  cap({
    id: 'clock/now',
    effects: [],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: [],
    resourceArguments: [],
  }),
];

const grant = (g: Omit<Grant, 'createdAt'>): Grant => ({ createdAt: NOW - HOUR, ...g });

/** Grants of the fixture world. */
export const GRANTS: readonly Grant[] = [
  grant({
    id: 'grt_alice_read',
    principalId: 'alice',
    capabilities: ['fs/read_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app' }],
    scopes: ['fs:read'],
  }),
  grant({
    id: 'grt_alice_write',
    principalId: 'alice',
    capabilities: ['fs/write_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app/out' }],
    scopes: ['fs:write'],
  }),
  grant({
    id: 'grt_alice_fetch',
    principalId: 'alice',
    capabilities: ['fetch/*'],
    resourcePatterns: [
      { kind: 'host_set', hosts: ['api.example.com', '*.cdn.example.com'], cidrs: [] },
    ],
    scopes: ['net:fetch'],
  }),
  grant({
    id: 'grt_alice_note1_noscope',
    principalId: 'alice',
    capabilities: ['notes/get'],
    resourcePatterns: [{ kind: 'exact_id', id: 'note-1' }],
    scopes: [],
  }),
  grant({
    id: 'grt_alice_note2',
    principalId: 'alice',
    capabilities: ['notes/get'],
    resourcePatterns: [{ kind: 'exact_id', id: 'note-2' }],
    scopes: ['notes:read'],
  }),
  grant({
    id: 'grt_alice_note_expired',
    principalId: 'alice',
    capabilities: ['notes/get'],
    resourcePatterns: [{ kind: 'exact_id', id: 'note-old' }],
    scopes: ['notes:read'],
    expiresAt: NOW - 1,
  }),
  grant({
    id: 'grt_alice_note_revoked',
    principalId: 'alice',
    capabilities: ['notes/get'],
    resourcePatterns: [{ kind: 'exact_id', id: 'note-gone' }],
    scopes: ['notes:read'],
    revokedAt: NOW - 1,
  }),
  grant({
    id: 'grt_alice_mail_ops',
    principalId: 'alice',
    capabilities: ['mail/send'],
    resourcePatterns: [{ kind: 'exact_id', id: 'ops@example.com' }],
    scopes: ['mail:send'],
  }),
  grant({
    id: 'grt_alice_mail_security',
    principalId: 'alice',
    capabilities: ['mail/send'],
    resourcePatterns: [{ kind: 'exact_id', id: 'security@example.com' }],
    scopes: ['mail:send', 'flow:secret'],
  }),
  grant({
    id: 'grt_alice_clock',
    principalId: 'alice',
    capabilities: ['clock/now'],
    resourcePatterns: [],
    scopes: [],
  }),
  // Argument constraints (I5): alice may write under /data/app/logs only in append mode, except
  // under /data/app/logs/archive where an unconstrained grant also applies; and may mail the
  // team only with a subject tagged [team].
  grant({
    id: 'grt_alice_append',
    principalId: 'alice',
    capabilities: ['fs/write_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app/logs' }],
    scopes: ['fs:write'],
    argumentConstraints: [{ argument: 'mode', kind: 'one_of', values: ['append'] }],
  }),
  grant({
    id: 'grt_alice_logs_archive',
    principalId: 'alice',
    capabilities: ['fs/write_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app/logs/archive' }],
    scopes: ['fs:write'],
  }),
  grant({
    id: 'grt_alice_mail_team',
    principalId: 'alice',
    capabilities: ['mail/send'],
    resourcePatterns: [{ kind: 'exact_id', id: 'team@example.com' }],
    scopes: ['mail:send'],
    argumentConstraints: [
      { argument: 'subject', kind: 'pattern', pattern: '\\[team\\] .{1,120}' },
      { argument: 'cc', kind: 'absent' },
    ],
  }),
  // Several resources per call (I3, I5): alice may move files within /data/app/out (reading and
  // removing the source needs fs:read there), may move files INTO /data/app/logs (a grant
  // without fs:read, so a source there fails), and may read several files under /data/app.
  grant({
    id: 'grt_alice_move',
    principalId: 'alice',
    capabilities: ['fs/move_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app/out' }],
    scopes: ['fs:write', 'fs:read'],
  }),
  grant({
    id: 'grt_alice_move_into_logs',
    principalId: 'alice',
    capabilities: ['fs/move_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app/logs' }],
    scopes: ['fs:write'],
  }),
  grant({
    id: 'grt_alice_read_many',
    principalId: 'alice',
    capabilities: ['fs/read_multiple_files'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/app' }],
    scopes: ['fs:read'],
  }),
  // URL schemes and ports (I5): api.example.com on https port 8443 only.
  grant({
    id: 'grt_alice_fetch_8443',
    principalId: 'alice',
    capabilities: ['fetch/fetch'],
    resourcePatterns: [
      {
        kind: 'host_set',
        hosts: ['api.example.com'],
        cidrs: [],
        schemes: ['https'],
        ports: [8443],
      },
    ],
    scopes: ['net:fetch'],
  }),
  grant({
    id: 'grt_bob_read',
    principalId: 'bob',
    capabilities: ['fs/read_file'],
    resourcePatterns: [{ kind: 'path_prefix', prefix: '/data/bob' }],
    scopes: ['fs:read'],
  }),
];

/** The policy context of a principal in the fixture world, as the PDP cache would hold it. */
export function contextFor(principalId: string, grants: readonly Grant[] = GRANTS): PolicyContext {
  return {
    grants: grants.filter((g) => g.principalId === principalId),
    capabilities: new Map(CAPABILITIES.map((c) => [c.id, c])),
  };
}

/** An initialized session of `owner` on the newest version. */
export function activeSession(owner: string, over: Partial<SessionFacts> = {}): SessionFacts {
  return {
    state: 'active',
    id: `ses_${owner}`,
    initialized: true,
    ownerPrincipalId: owner,
    negotiatedVersion: '2025-06-18',
    requestVersion: '2025-06-18',
    ...over,
  };
}

/** A resolved path resource (as libs/canonical would return it). */
export const path = (canonical: string, raw = canonical): ResourceFacts => ({
  status: 'resolved',
  resource: { kind: 'path', raw, canonical },
});
/** A resolved URL resource. */
export const url = (href: string, addresses: string[] = ['93.184.216.34']): ResourceFacts => ({
  status: 'resolved',
  resource: { kind: 'url', raw: href, canonical: href, host: new URL(href).hostname, addresses },
});
/** A resolved opaque id. */
export const id = (value: string): ResourceFacts => ({
  status: 'resolved',
  resource: { kind: 'id', raw: value, canonical: value },
});

/**
 * A call with its arguments, digested the way the edge digests them. `resource` is the facts of
 * the capability's first resource argument, or the full list of argument resources.
 */
export function call(
  capabilityId: string,
  resource: ResourceFacts | readonly ArgumentResource[] | undefined,
  args: Readonly<Record<string, unknown>>,
  over: Partial<CallFacts> = {},
): CallFacts {
  const capability = CAPABILITIES.find((c) => c.id === capabilityId);
  const observed = capability?.definitionDigest;
  const resources: readonly ArgumentResource[] | undefined =
    resource === undefined
      ? undefined
      : isList(resource)
        ? resource
        : [
            {
              // A capability outside the fixture manifest (a benchmark's copy under another id)
              // names its argument after the resource's kind: path, url or id.
              argument: capability?.resourceArguments[0]?.name ?? kindOf(resource),
              index: 0,
              facts: resource,
            },
          ];
  return {
    capabilityId,
    argumentsDigest: argumentsDigest(args),
    arguments: args,
    ...(resources !== undefined ? { resources } : {}),
    ...(observed !== undefined ? { observedDefinitionDigest: observed } : {}),
    ...over,
  };
}

function kindOf(facts: ResourceFacts): string {
  return facts.status === 'resolved' ? facts.resource.kind : facts.kind;
}

function isList(r: ResourceFacts | readonly ArgumentResource[]): r is readonly ArgumentResource[] {
  return Array.isArray(r);
}

/** One argument's resource facts, for a call with several resources. */
export const on = (argument: string, facts: ResourceFacts, index = 0): ArgumentResource => ({
  argument,
  index,
  facts,
});

/** An approved, unconsumed approval bound to exactly `c` for `principalId`. */
export function approvalFor(
  principalId: string,
  c: CallFacts,
  over: Partial<Approval> = {},
): Approval {
  return {
    id: `apr_${principalId}_${c.capabilityId.replace('/', '_')}`,
    principalId,
    capabilityId: c.capabilityId,
    bindingDigest: approvalBindingDigest({
      principalId,
      capabilityId: c.capabilityId,
      canonicalResources: boundResourcesOf(c.resources),
      argumentsDigest: c.argumentsDigest,
    }),
    state: 'approved',
    expiresAt: NOW + HOUR,
    ...over,
  };
}

/** A vault handle record. */
export function handle(
  idValue: string,
  owner: string,
  over: Partial<HandleRecord> = {},
): HandleRecord {
  return {
    id: idValue,
    ownerPrincipalId: owner,
    producingCapability: 'fs/read_file',
    labels: { provider: 'fs' },
    createdAt: NOW - 1000,
    expiresAt: NOW + HOUR,
    sizeBytes: 42,
    ...over,
  };
}

/** A fixture: one request, the principal whose context decides it, and the expected decision. */
export type DecisionFixture = {
  readonly name: string;
  readonly invariant: InvariantId;
  readonly expect: {
    readonly outcome: Outcome;
    readonly reason: ReasonCode;
    readonly matchedGrantId?: string;
    readonly targetReason?: ReasonCode;
  };
  /** For a deny fixture: the allowed neighbour that must still pass (over-blocking fails it). */
  readonly neighbour?: string;
} & (
  | { readonly op: 'decide'; readonly request: DecideRequest }
  | { readonly op: 'pipe'; readonly request: PipeRequest }
  | { readonly op: 'peek'; readonly request: PeekRequest }
);

const decide = (
  principal: Principal | undefined,
  c: CallFacts,
  over: Partial<DecideRequest> = {},
): DecideRequest => ({
  ...(principal !== undefined ? { principal } : {}),
  session: activeSession(principal?.id ?? 'alice'),
  now: NOW,
  call: c,
  ...over,
});

const readCall = (p: string, raw?: string) =>
  call('fs/read_file', path(p, raw), { path: raw ?? p });
const writeArgs = { path: '/data/app/out/report.txt', content: 'quarterly numbers' };
const writeCall = call('fs/write_file', path(writeArgs.path), writeArgs);
const otherWriteArgs = { path: '/data/app/out/report.txt', content: 'rm -rf / # injected' };
const otherWriteCall = call('fs/write_file', path(otherWriteArgs.path), otherWriteArgs);
const secretWriteArgs = { path: '/data/app/secret.txt', content: 'x' };
const secretWriteCall = call('fs/write_file', path(secretWriteArgs.path), secretWriteArgs);

const ownHandle = handle('hdl_alice_own_000000000', 'alice');
const bobHandle = handle('hdl_bob_owned_000000000', 'bob');
const expiredHandle = handle('hdl_alice_expired_00000', 'alice', { expiresAt: NOW - 1 });
const secretHandle = handle('hdl_alice_secret_000000', 'alice', {
  labels: { provider: 'fs', sensitivity: 'secret' },
});

const pipe = (
  source: HandleRecord | undefined,
  sourceId: string,
  target: CallFacts,
  over: Partial<PipeRequest> = {},
): PipeRequest => ({
  principal: ALICE,
  session: activeSession('alice'),
  now: NOW,
  sourceHandleId: sourceId,
  ...(source !== undefined ? { source } : {}),
  target,
  ...over,
});
const move = (source: string, destination: string) =>
  call('fs/move_file', [on('source', path(source)), on('destination', path(destination))], {
    source,
    destination,
  });
const readMany = (...paths: string[]) =>
  call(
    'fs/read_multiple_files',
    paths.map((p, i) => on('paths', path(p), i)),
    { paths },
  );
const fetchOf = (href: string) => call('fetch/fetch', url(href), { url: href });

const mailTo = (to: string, extra: Readonly<Record<string, unknown>> = {}) =>
  call('mail/send', id(to), { to, body: { hcpHandle: 'source' }, ...extra });

/** A write under /data/app/logs with its approval bound, so only the grant decides. */
const logWrite = (p: string, extra: Readonly<Record<string, unknown>>) => {
  const c = call('fs/write_file', path(p), { path: p, content: 'line', ...extra });
  return { ...c, approval: approvalFor('alice', c) };
};

const allow = (matchedGrantId?: string) =>
  ({
    outcome: 'allow',
    reason: 'ALLOWED',
    ...(matchedGrantId !== undefined ? { matchedGrantId } : {}),
  }) as const;
const deny = (reason: ReasonCode, targetReason?: ReasonCode) =>
  ({ outcome: 'deny', reason, ...(targetReason !== undefined ? { targetReason } : {}) }) as const;

/** Every fixture. Names are stable: tests, benchmarks and docs refer to them. */
export const FIXTURES: readonly DecisionFixture[] = [
  // I1 metadata non-authority
  {
    name: 'i1.allow.read_pinned',
    invariant: 'I1',
    op: 'decide',
    request: decide(ALICE, readCall('/data/app/a.txt')),
    expect: allow('grt_alice_read'),
  },
  {
    name: 'i1.deny.unknown_tool',
    invariant: 'I1',
    op: 'decide',
    neighbour: 'i1.allow.read_pinned',
    request: decide(ALICE, call('fs/delete_everything', path('/data/app/a.txt'), {})),
    expect: deny('CAPABILITY_UNKNOWN'),
  },
  {
    name: 'i1.deny.definition_changed',
    invariant: 'I1',
    op: 'decide',
    neighbour: 'i1.allow.read_pinned',
    request: decide(ALICE, {
      ...readCall('/data/app/a.txt'),
      observedDefinitionDigest: 'sha256:' + 'b'.repeat(64),
    }),
    expect: deny('TOOL_DEFINITION_CHANGED'),
  },

  // I2 grant-backed approval
  {
    name: 'i2.allow.write_with_bound_approval',
    invariant: 'I2',
    op: 'decide',
    request: decide(ALICE, { ...writeCall, approval: approvalFor('alice', writeCall) }),
    expect: allow('grt_alice_write'),
  },
  {
    name: 'i2.deny.write_without_approval',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, writeCall),
    expect: deny('APPROVAL_REQUIRED'),
  },
  {
    name: 'i2.deny.approval_pending',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, {
      ...writeCall,
      approval: approvalFor('alice', writeCall, { state: 'pending' }),
    }),
    expect: deny('APPROVAL_REQUIRED'),
  },
  {
    name: 'i2.deny.approval_for_other_arguments',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, { ...otherWriteCall, approval: approvalFor('alice', writeCall) }),
    expect: deny('APPROVAL_MISMATCH'),
  },
  {
    name: 'i2.deny.approval_of_other_principal',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, { ...writeCall, approval: approvalFor('bob', writeCall) }),
    expect: deny('APPROVAL_MISMATCH'),
  },
  {
    name: 'i2.deny.approval_replayed',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, {
      ...writeCall,
      approval: approvalFor('alice', writeCall, { consumedAt: NOW - 10 }),
    }),
    expect: deny('APPROVAL_CONSUMED'),
  },
  {
    name: 'i2.deny.approval_expired',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, {
      ...writeCall,
      approval: approvalFor('alice', writeCall, { expiresAt: NOW }),
    }),
    expect: deny('APPROVAL_EXPIRED'),
  },
  {
    name: 'i2.deny.approval_without_grant',
    invariant: 'I2',
    op: 'decide',
    neighbour: 'i2.allow.write_with_bound_approval',
    request: decide(ALICE, { ...secretWriteCall, approval: approvalFor('alice', secretWriteCall) }),
    expect: deny('NO_MATCHING_GRANT'),
  },

  // I3 canonical resources
  {
    name: 'i3.allow.canonical_inside',
    invariant: 'I3',
    op: 'decide',
    request: decide(ALICE, readCall('/data/app/docs/a.txt', '/data/app/./docs//a.txt')),
    expect: allow('grt_alice_read'),
  },
  {
    name: 'i3.deny.symlink_resolves_outside',
    invariant: 'I3',
    op: 'decide',
    neighbour: 'i3.allow.canonical_inside',
    request: decide(ALICE, readCall('/etc/passwd', '/data/app/link-to-etc/passwd')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i3.deny.canonicaliser_denied',
    invariant: 'I3',
    op: 'decide',
    neighbour: 'i3.allow.canonical_inside',
    request: decide(
      ALICE,
      call(
        'fs/read_file',
        {
          status: 'denied',
          kind: 'path',
          raw: '/data/app/../../etc/passwd',
          rule: 'path.outside_roots',
          detail: 'resolves to /etc/passwd',
          canonical: '/etc/passwd',
        },
        { path: '/data/app/../../etc/passwd' },
      ),
    ),
    expect: deny('RESOURCE_DENIED'),
  },
  {
    name: 'i3.deny.unresolvable',
    invariant: 'I3',
    op: 'decide',
    neighbour: 'i3.allow.canonical_inside',
    request: decide(
      ALICE,
      call(
        'fs/read_file',
        {
          status: 'unresolvable',
          kind: 'path',
          raw: '/data/app/dangling',
          rule: 'path.dangling_link',
          detail: 'link target missing',
        },
        { path: '/data/app/dangling' },
      ),
    ),
    expect: deny('RESOURCE_UNRESOLVABLE'),
  },
  {
    name: 'i3.deny.resource_missing',
    invariant: 'I3',
    op: 'decide',
    neighbour: 'i3.allow.canonical_inside',
    request: decide(ALICE, call('fs/read_file', undefined, {})),
    expect: deny('INPUT_INVALID'),
  },

  // I4 principal binding
  {
    name: 'i4.allow.own_session',
    invariant: 'I4',
    op: 'decide',
    request: decide(ALICE, readCall('/data/app/a.txt')),
    expect: allow('grt_alice_read'),
  },
  {
    name: 'i4.deny.unauthenticated',
    invariant: 'I4',
    op: 'decide',
    neighbour: 'i4.allow.own_session',
    request: decide(undefined, readCall('/data/app/a.txt')),
    expect: deny('PRINCIPAL_UNAUTHENTICATED'),
  },
  {
    name: 'i4.deny.foreign_session',
    invariant: 'I4',
    op: 'decide',
    neighbour: 'i4.allow.own_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), { session: activeSession('bob') }),
    expect: deny('SESSION_FOREIGN'),
  },
  {
    name: 'i4.allow.peek_own_handle',
    invariant: 'I4',
    op: 'peek',
    request: {
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      handleId: ownHandle.id,
      handle: ownHandle,
    },
    expect: allow(),
  },
  {
    name: 'i4.deny.peek_foreign_handle',
    invariant: 'I4',
    op: 'peek',
    neighbour: 'i4.allow.peek_own_handle',
    request: {
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      handleId: bobHandle.id,
      handle: bobHandle,
    },
    expect: deny('HANDLE_NOT_OWNED'),
  },
  {
    name: 'i4.deny.peek_missing_handle',
    invariant: 'I4',
    op: 'peek',
    neighbour: 'i4.allow.peek_own_handle',
    request: {
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      handleId: 'hdl_missing',
    },
    expect: deny('HANDLE_NOT_OWNED'),
  },
  {
    name: 'i4.deny.peek_expired_handle',
    invariant: 'I4',
    op: 'peek',
    neighbour: 'i4.allow.peek_own_handle',
    request: {
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      handleId: expiredHandle.id,
      handle: expiredHandle,
    },
    expect: deny('HANDLE_EXPIRED'),
  },

  // I5 scoped capability invocation
  {
    name: 'i5.allow.prefix_on_boundary',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, readCall('/data/app/x')),
    expect: allow('grt_alice_read'),
  },
  {
    name: 'i5.deny.sibling_prefix',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.prefix_on_boundary',
    request: decide(ALICE, readCall('/data/app_evil/x')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.deny.other_principals_grant',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.prefix_on_boundary',
    request: decide(ALICE, readCall('/data/bob/x')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.allow.host_in_set',
    invariant: 'I5',
    op: 'decide',
    request: decide(
      ALICE,
      call('fetch/fetch', url('https://api.example.com/v1'), { url: 'https://api.example.com/v1' }),
    ),
    expect: allow('grt_alice_fetch'),
  },
  {
    name: 'i5.allow.host_wildcard',
    invariant: 'I5',
    op: 'decide',
    request: decide(
      ALICE,
      call('fetch/fetch', url('https://img.cdn.example.com/a.png'), {
        url: 'https://img.cdn.example.com/a.png',
      }),
    ),
    expect: allow('grt_alice_fetch'),
  },
  {
    name: 'i5.deny.host_not_in_set',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.host_in_set',
    request: decide(
      ALICE,
      call('fetch/fetch', url('https://api.example.com.evil.net/v1'), {
        url: 'https://api.example.com.evil.net/v1',
      }),
    ),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.deny.wildcard_apex',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.host_wildcard',
    request: decide(
      ALICE,
      call('fetch/fetch', url('https://cdn.example.com/a.png'), {
        url: 'https://cdn.example.com/a.png',
      }),
    ),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.deny.url_other_port',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.host_in_set',
    // A grant for a host covers its scheme's default port only, not a service on another port.
    request: decide(ALICE, fetchOf('http://api.example.com:18080/')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.allow.url_granted_port',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, fetchOf('https://api.example.com:8443/v1')),
    expect: allow('grt_alice_fetch_8443'),
  },
  {
    name: 'i5.deny.url_granted_port_other_scheme',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.url_granted_port',
    request: decide(ALICE, fetchOf('http://api.example.com:8443/v1')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.allow.move_within_grant',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, move('/data/app/out/a.txt', '/data/app/out/b.txt')),
    expect: allow('grt_alice_move'),
  },
  {
    name: 'i5.deny.move_from_ungranted_source',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.move_within_grant',
    // The confused deputy of a half-checked move: another principal's file moved into a folder
    // the caller may read. The destination is granted; the source is not.
    request: decide(ALICE, move('/data/bob/secret.txt', '/data/app/out/stolen.txt')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.deny.move_to_ungranted_destination',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.move_within_grant',
    request: decide(ALICE, move('/data/app/out/a.txt', '/data/bob/a.txt')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.allow.move_into_write_only_grant',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, move('/data/app/out/a.txt', '/data/app/logs/a.txt')),
    expect: allow('grt_alice_move'),
  },
  {
    name: 'i5.deny.move_source_role_scope',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.move_into_write_only_grant',
    // The source's role (delete) needs fs:read on top of the capability's fs:write.
    request: decide(ALICE, move('/data/app/logs/a.txt', '/data/app/logs/b.txt')),
    expect: deny('SCOPE_MISSING'),
  },
  {
    name: 'i3.deny.move_source_missing',
    invariant: 'I3',
    op: 'decide',
    neighbour: 'i5.allow.move_within_grant',
    request: decide(
      ALICE,
      call('fs/move_file', [on('destination', path('/data/app/out/b.txt'))], {
        source: '/data/app/out/a.txt',
        destination: '/data/app/out/b.txt',
      }),
    ),
    expect: deny('INPUT_INVALID'),
  },
  {
    name: 'i3.deny.undeclared_resource_argument',
    invariant: 'I3',
    op: 'decide',
    neighbour: 'i1.allow.read_pinned',
    request: decide(
      ALICE,
      call(
        'fs/read_file',
        [on('path', path('/data/app/a.txt')), on('other', path('/data/app/b.txt'))],
        { path: '/data/app/a.txt' },
      ),
    ),
    expect: deny('INPUT_INVALID'),
  },
  {
    name: 'i5.allow.read_many_within_grant',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, readMany('/data/app/a.txt', '/data/app/docs/b.txt')),
    expect: allow('grt_alice_read_many'),
  },
  {
    name: 'i5.deny.read_many_one_outside',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.read_many_within_grant',
    request: decide(ALICE, readMany('/data/app/a.txt', '/data/bob/b.txt')),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.allow.scoped_note',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, call('notes/get', id('note-2'), { id: 'note-2' })),
    expect: allow('grt_alice_note2'),
  },
  {
    name: 'i5.deny.scope_missing',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.scoped_note',
    request: decide(ALICE, call('notes/get', id('note-1'), { id: 'note-1' })),
    expect: deny('SCOPE_MISSING'),
  },
  {
    name: 'i5.deny.grant_expired',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.scoped_note',
    request: decide(ALICE, call('notes/get', id('note-old'), { id: 'note-old' })),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.deny.grant_revoked',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.scoped_note',
    request: decide(ALICE, call('notes/get', id('note-gone'), { id: 'note-gone' })),
    expect: deny('NO_MATCHING_GRANT'),
  },
  {
    name: 'i5.allow.argument_in_one_of',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, logWrite('/data/app/logs/app.log', { mode: 'append' })),
    expect: allow('grt_alice_append'),
  },
  {
    name: 'i5.deny.argument_not_one_of',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.argument_in_one_of',
    request: decide(ALICE, logWrite('/data/app/logs/app.log', { mode: 'overwrite' })),
    expect: deny('ARGUMENT_NOT_GRANTED'),
  },
  {
    name: 'i5.deny.constrained_argument_missing',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.argument_in_one_of',
    request: decide(ALICE, logWrite('/data/app/logs/app.log', {})),
    expect: deny('ARGUMENT_NOT_GRANTED'),
  },
  {
    // The constrained grant covers this path too and refuses `overwrite`; the unconstrained one matches.
    name: 'i5.allow.unconstrained_grant_also_covers',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, logWrite('/data/app/logs/archive/old.log', { mode: 'overwrite' })),
    expect: allow('grt_alice_logs_archive'),
  },
  {
    name: 'i5.allow.no_resource_capability',
    invariant: 'I5',
    op: 'decide',
    request: decide(ALICE, call('clock/now', undefined, {})),
    expect: allow('grt_alice_clock'),
  },
  {
    name: 'i5.deny.no_grant_at_all',
    invariant: 'I5',
    op: 'decide',
    neighbour: 'i5.allow.no_resource_capability',
    request: decide(BOB, call('clock/now', undefined, {}), { session: activeSession('bob') }),
    expect: deny('NO_MATCHING_GRANT'),
  },

  // I6 source-and-target data flow
  {
    name: 'i6.allow.pipe_to_granted_target',
    invariant: 'I6',
    op: 'pipe',
    request: pipe(ownHandle, ownHandle.id, mailTo('ops@example.com')),
    expect: allow('grt_alice_mail_ops'),
  },
  {
    name: 'i6.deny.pipe_to_ungranted_target',
    invariant: 'I6',
    op: 'pipe',
    neighbour: 'i6.allow.pipe_to_granted_target',
    request: pipe(ownHandle, ownHandle.id, mailTo('attacker@evil.example')),
    expect: deny('PIPE_TARGET_DENIED', 'NO_MATCHING_GRANT'),
  },
  {
    name: 'i6.deny.pipe_from_foreign_handle',
    invariant: 'I6',
    op: 'pipe',
    neighbour: 'i6.allow.pipe_to_granted_target',
    request: pipe(bobHandle, bobHandle.id, mailTo('ops@example.com')),
    expect: deny('HANDLE_NOT_OWNED'),
  },
  {
    name: 'i6.deny.pipe_from_expired_handle',
    invariant: 'I6',
    op: 'pipe',
    neighbour: 'i6.allow.pipe_to_granted_target',
    request: pipe(expiredHandle, expiredHandle.id, mailTo('ops@example.com')),
    expect: deny('HANDLE_EXPIRED'),
  },
  {
    name: 'i6.allow.secret_to_flow_scoped_target',
    invariant: 'I6',
    op: 'pipe',
    request: pipe(secretHandle, secretHandle.id, mailTo('security@example.com')),
    expect: allow('grt_alice_mail_security'),
  },
  {
    name: 'i6.allow.pipe_argument_matches_pattern',
    invariant: 'I6',
    op: 'pipe',
    request: pipe(
      ownHandle,
      ownHandle.id,
      mailTo('team@example.com', { subject: '[team] weekly numbers' }),
    ),
    expect: allow('grt_alice_mail_team'),
  },
  {
    name: 'i6.deny.pipe_argument_breaks_pattern',
    invariant: 'I6',
    op: 'pipe',
    neighbour: 'i6.allow.pipe_argument_matches_pattern',
    request: pipe(
      ownHandle,
      ownHandle.id,
      mailTo('team@example.com', { subject: 'weekly numbers' }),
    ),
    expect: deny('PIPE_TARGET_DENIED', 'ARGUMENT_NOT_GRANTED'),
  },
  {
    name: 'i6.deny.secret_to_unscoped_target',
    invariant: 'I6',
    op: 'pipe',
    neighbour: 'i6.allow.secret_to_flow_scoped_target',
    request: pipe(secretHandle, secretHandle.id, mailTo('ops@example.com')),
    expect: deny('PIPE_TARGET_DENIED'),
  },

  // I7 deny-path audit
  {
    name: 'i7.allow.audit_available',
    invariant: 'I7',
    op: 'decide',
    request: decide(ALICE, readCall('/data/app/a.txt'), { auditAvailable: true }),
    expect: allow('grt_alice_read'),
  },
  {
    name: 'i7.deny.audit_unavailable',
    invariant: 'I7',
    op: 'decide',
    neighbour: 'i7.allow.audit_available',
    request: decide(ALICE, readCall('/data/app/a.txt'), { auditAvailable: false }),
    expect: deny('AUDIT_UNAVAILABLE'),
  },

  // I8 explicit protocol state
  {
    name: 'i8.allow.initialized_session',
    invariant: 'I8',
    op: 'decide',
    request: decide(ALICE, readCall('/data/app/a.txt')),
    expect: allow('grt_alice_read'),
  },
  {
    name: 'i8.deny.no_session',
    invariant: 'I8',
    op: 'decide',
    neighbour: 'i8.allow.initialized_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), {
      session: { state: 'none', initialized: false },
    }),
    expect: deny('SESSION_NOT_INITIALIZED'),
  },
  {
    name: 'i8.deny.initialize_incomplete',
    invariant: 'I8',
    op: 'decide',
    neighbour: 'i8.allow.initialized_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), {
      session: activeSession('alice', { initialized: false }),
    }),
    expect: deny('SESSION_NOT_INITIALIZED'),
  },
  {
    name: 'i8.deny.unknown_session',
    invariant: 'I8',
    op: 'decide',
    neighbour: 'i8.allow.initialized_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), {
      session: { state: 'unknown', id: 'ses_forged', initialized: false },
    }),
    expect: deny('SESSION_UNKNOWN'),
  },
  {
    name: 'i8.deny.expired_session',
    invariant: 'I8',
    op: 'decide',
    neighbour: 'i8.allow.initialized_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), {
      session: activeSession('alice', { state: 'expired' }),
    }),
    expect: deny('SESSION_EXPIRED'),
  },
  {
    name: 'i8.deny.unsupported_version',
    invariant: 'I8',
    op: 'decide',
    neighbour: 'i8.allow.initialized_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), {
      session: activeSession('alice', {
        negotiatedVersion: '2024-01-01',
        requestVersion: '2024-01-01',
      }),
    }),
    expect: deny('PROTOCOL_VERSION_UNSUPPORTED'),
  },
  {
    name: 'i8.deny.version_header_mismatch',
    invariant: 'I8',
    op: 'decide',
    neighbour: 'i8.allow.initialized_session',
    request: decide(ALICE, readCall('/data/app/a.txt'), {
      session: activeSession('alice', { requestVersion: '2025-03-26' }),
    }),
    expect: deny('PROTOCOL_VERSION_MISMATCH'),
  },
];

/** The principal whose context decides a fixture (the unauthenticated case uses alice's empty-handed view). */
export function fixturePrincipal(f: DecisionFixture): string {
  return f.request.principal?.id ?? 'alice';
}
