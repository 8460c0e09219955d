import {
  HcpError,
  approvalBindingDigest,
  argumentsDigest,
  type Approval,
  type ArgumentResource,
  type AuditEntry,
  type Capability,
  type Decision,
  type HandleRecord,
  type Principal,
  type ReasonCode,
  type ResourceFacts,
  type SessionFacts,
} from '@hcp/core';
import { PolicyEngine, recordDecision } from '@hcp/policy';
import {
  CAPABILITIES,
  FIXTURE_VERSIONS,
  GRANTS,
  NOW,
  activeSession,
  handle as fixtureHandle,
} from '@hcp/policy/testing';
import type { DecideRequestFacts } from '@hcp/proto';
import type { UpstreamCallResult } from '../providers/upstream-client';
import {
  CALL_LIMITS,
  CallService,
  PIPE_RESOURCE_READ_CHECK,
  boundedArguments,
  type CallRefusal,
  type PipeInput,
} from './call.service';
import type {
  ApprovalRequestInput,
  ArgumentValidatorPort,
  CallableCapability,
  CallPorts,
  DecidePipeFacts,
  VaultPutInput,
} from './ports';

const alice: Principal = { id: 'alice', kind: 'agent' };
const session: SessionFacts = {
  state: 'active',
  id: 'ses-1',
  initialized: true,
  ownerPrincipalId: 'alice',
  negotiatedVersion: '2025-11-25',
};

const readFile: Capability = {
  id: 'fs/read_file',
  provider: 'fs',
  tool: 'read_file',
  effects: ['read'],
  risk: 'low',
  approvalRequired: false,
  requiredScopes: [],
  resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
  definitionDigest: 'sha256:pinned',
};
const fetchUrl: Capability = {
  id: 'web/fetch',
  provider: 'web',
  tool: 'fetch',
  effects: ['network'],
  risk: 'medium',
  approvalRequired: false,
  requiredScopes: [],
  resourceArguments: [{ name: 'url', canonicalizer: 'url', role: 'fetch' }],
};
const writeFile: Capability = {
  id: 'fs/write_file',
  provider: 'fs',
  tool: 'write_file',
  effects: ['write'],
  risk: 'medium',
  approvalRequired: false,
  requiredScopes: [],
  resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'write' }],
};

function decision(
  outcome: 'allow' | 'deny',
  reason: ReasonCode,
  extra: Partial<Decision> = {},
): Decision {
  return {
    id: `dec-${reason}`,
    outcome,
    reason,
    check: outcome === 'allow' ? 'all' : 'scoped_grant',
    explanation: `${reason} explained`,
    decidedAt: 1000,
    ablations: [],
    ...extra,
  };
}

const allow = decision('allow', 'ALLOWED');

function handle(id: string, owner = 'alice', labels: Record<string, string> = {}): HandleRecord {
  return {
    id,
    ownerPrincipalId: owner,
    producingCapability: 'fs/read_file',
    labels,
    createdAt: 1,
    expiresAt: 10_000,
    sizeBytes: 5,
  };
}

/** Fakes for every port, each recording what it was asked. */
function harness(
  options: {
    decide?: Decision | Error;
    decidePipe?: Decision;
    upstream?: UpstreamCallResult | Error;
    auditFails?: boolean;
    /** The audit takes this many entries, then refuses every further one. */
    auditTakes?: number;
    auditAvailable?: boolean;
    manifest?: Record<string, CallableCapability>;
    source?: HandleRecord;
    putError?: Error;
    consumeError?: Error;
    canonicalizeError?: Error;
    requestError?: Error;
    validator?: ArgumentValidatorPort;
    auditPublished?: () => Promise<void>;
    decidePipeError?: Error;
    peekError?: Error;
    resolveError?: Error;
    manifestError?: Error;
    /** What the edge lists for a tool right before the provider runs (absent: not checked). */
    currentDigest?: (capabilityId: string) => string | undefined;
  } = {},
) {
  const calls = {
    decide: [] as DecideRequestFacts[],
    decidePipe: [] as DecidePipeFacts[],
    upstream: [] as { capabilityId: string; args: Record<string, unknown> }[],
    put: [] as VaultPutInput[],
    peek: [] as { principalId: string; handleId: string; maxBytes: number }[],
    resolve: [] as { principalId: string; handleId: string; decisionId: string }[],
    consume: [] as { approvalId: string }[],
    request: [] as ApprovalRequestInput[],
    validate: [] as {
      capabilityId: string;
      args: Readonly<Record<string, unknown>>;
      pinnedDigest?: string;
    }[],
    audit: [] as AuditEntry[],
    /** The order of the effects that matter to intent-before-effect. */
    events: [] as ('publish' | 'upstream' | 'consume')[],
  };
  const manifest = options.manifest ?? {
    'fs/read_file': { capability: readFile, inlinePreview: false, sensitivity: 'internal' },
    'fs/write_file': { capability: writeFile, inlinePreview: false },
    'web/fetch': { capability: fetchUrl, inlinePreview: true, previewMaxBytes: 16 },
  };
  const ports: CallPorts = {
    now: () => 2000,
    decision: {
      decide: (facts) => {
        calls.decide.push(facts);
        const d = options.decide ?? allow;
        return d instanceof Error ? Promise.reject(d) : Promise.resolve(d);
      },
      decidePipe: (facts) => {
        calls.decidePipe.push(facts);
        if (options.decidePipeError) return Promise.reject(options.decidePipeError);
        return Promise.resolve(options.decidePipe ?? allow);
      },
    },
    vault: {
      put: (input) => {
        calls.put.push(input);
        if (options.putError) return Promise.reject(options.putError);
        return Promise.resolve({
          ...handle(`hdl-${calls.put.length}`, input.ownerPrincipalId, { ...input.labels }),
          producingCapability: input.producingCapability,
          sizeBytes: input.payload.length,
        });
      },
      peek: (input) => {
        calls.peek.push(input);
        if (options.peekError) return Promise.reject(options.peekError);
        if (input.principalId !== 'alice') {
          return Promise.reject(new HcpError('HANDLE_NOT_OWNED', 'not yours'));
        }
        return Promise.resolve({
          handle: handle(input.handleId),
          preview: 'hello',
          truncated: false,
        });
      },
      describe: (input) =>
        Promise.resolve(
          options.source !== undefined && options.source.ownerPrincipalId === input.principalId
            ? options.source
            : undefined,
        ),
      resolveForPipe: (input) => {
        calls.resolve.push(input);
        if (options.resolveError) return Promise.reject(options.resolveError);
        const src = options.source ?? handle(input.handleId);
        return Promise.resolve({ handle: src, payload: Buffer.from('secret data', 'utf8') });
      },
    },
    upstream: {
      callTool: (capabilityId, args) => {
        calls.upstream.push({ capabilityId, args });
        calls.events.push('upstream');
        const r = options.upstream ?? {
          content: [{ type: 'text', text: 'file body' }],
          isError: false,
          sizeBytes: 9,
        };
        return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
      },
    },
    canonicalizer: {
      canonicalize: (capability, args): Promise<ArgumentResource[]> => {
        if (options.canonicalizeError) return Promise.reject(options.canonicalizeError);
        return Promise.resolve(
          capability.resourceArguments
            .filter((arg) => arg.name in args)
            .map((arg) => {
              const raw = String(args[arg.name]);
              const facts: ResourceFacts = raw.includes('..')
                ? {
                    status: 'denied',
                    kind: arg.canonicalizer,
                    raw,
                    rule: 'path.outside_roots',
                    detail: 'escapes the root',
                  }
                : {
                    status: 'resolved',
                    resource: { kind: arg.canonicalizer, raw, canonical: `/root/${raw}` },
                  };
              return { argument: arg.name, index: 0, facts };
            }),
        );
      },
      maxRawLength: () => 4096,
    },
    manifest: {
      capability: (id) =>
        options.manifestError
          ? Promise.reject(options.manifestError)
          : Promise.resolve(manifest[id]),
    },
    approvals: {
      consume: (input) => {
        calls.consume.push(input);
        calls.events.push('consume');
        return options.consumeError ? Promise.reject(options.consumeError) : Promise.resolve();
      },
      request: (input): Promise<Approval> => {
        calls.request.push(input);
        if (options.requestError) return Promise.reject(options.requestError);
        return Promise.resolve({
          id: `apr-${calls.request.length}`,
          principalId: input.principalId,
          capabilityId: input.capabilityId,
          bindingDigest: input.bindingDigest,
          state: 'pending',
          expiresAt: 9000,
        });
      },
    },
    ...(options.currentDigest === undefined
      ? {}
      : { definitions: { current: options.currentDigest } }),
    ...(options.validator === undefined
      ? {}
      : {
          validator: {
            validate: (capabilityId, args, pinnedDigest) => {
              calls.validate.push({ capabilityId, args, pinnedDigest });
              return options.validator?.validate(capabilityId, args, pinnedDigest);
            },
          },
        }),
    audit: {
      available: () => options.auditAvailable ?? true,
      record: (entry) => {
        if (options.auditFails || calls.audit.length >= (options.auditTakes ?? Infinity))
          throw new HcpError('AUDIT_UNAVAILABLE', 'audit buffer full');
        calls.audit.push(entry);
      },
    },
  };
  const published = options.auditPublished;
  const auditDurability =
    published === undefined
      ? undefined
      : {
          recordDurable: (entry: AuditEntry) => {
            ports.audit.record(entry);
            calls.events.push('publish');
            return published();
          },
          flush: () => {
            calls.events.push('publish');
            return published();
          },
        };
  return {
    service: new CallService(auditDurability === undefined ? ports : { ...ports, auditDurability }),
    calls,
  };
}

const call = (args: unknown = { path: 'a.txt' }, capabilityId = 'fs/read_file') => ({
  principal: alice,
  session,
  capabilityId,
  args,
  observedDigest: 'sha256:pinned',
  traceId: 'trace-1',
});

/** Lets background work (a refusal waiting for its intent's publication) run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

function refused(outcome: unknown): CallRefusal {
  expect(outcome).toMatchObject({ kind: 'refused' });
  return outcome as CallRefusal;
}

describe('CallService.callTool', () => {
  it('publishes the intent before the provider runs, and waits for no other publish', async () => {
    const ok = harness({ auditPublished: () => Promise.resolve() });
    await expect(ok.service.callTool(call())).resolves.toMatchObject({ kind: 'handle' });
    // One awaited publish per call, and it comes before the effect.
    expect(ok.calls.events).toEqual(['publish', 'upstream']);
    expect(ok.calls.audit.map((e) => [e.check, e.outcome, e.decisionId])).toEqual([
      ['invocation.intent', 'allow', allow.id],
      ['invocation', 'allow', allow.id],
    ]);
  });

  it('never calls the provider when the intent cannot be published, and records the refusal after it', async () => {
    let publishes = 0;
    let release = (): void => undefined;
    const late = harness({
      auditPublished: () =>
        publishes++ === 0
          ? Promise.reject(new Error('flush timed out'))
          : new Promise<void>((resolve) => (release = resolve)),
    });
    const out = refused(await late.service.callTool(call()));
    expect(out).toMatchObject({
      reason: 'AUDIT_UNAVAILABLE',
      invariant: 'I7',
      decisionId: allow.id,
    });
    expect(out.message).toContain('flush timed out');
    expect(late.calls.upstream).toHaveLength(0);
    expect(late.calls.put).toHaveLength(0);
    // The intent will still be published; the refusal is recorded only once it is, so the log
    // reads intent, then refusal, whatever order a reconnecting bus stores them in.
    await settled();
    expect(late.calls.audit.map((e) => e.check)).toEqual(['invocation.intent']);
    release();
    await settled();
    expect(late.calls.audit.map((e) => [e.check, e.outcome, e.reason, e.decisionId])).toEqual([
      ['invocation.intent', 'allow', 'ALLOWED', allow.id],
      ['invocation.intent', 'deny', 'AUDIT_UNAVAILABLE', allow.id],
    ]);
  });

  it('refuses an allowed call whose definition changed before the provider ran; the unchanged one runs', async () => {
    // The decision was made on sha256:pinned; a list_changed heard meanwhile marks the provider
    // stale (the edge then lists nothing for the tool) or a re-list brought another digest.
    for (const now of [undefined, 'sha256:changed']) {
      const changed = harness({ currentDigest: () => now });
      const r = refused(await changed.service.callTool(call()));
      expect(r).toMatchObject({ reason: 'TOOL_DEFINITION_CHANGED', decisionId: 'dec-ALLOWED' });
      expect(changed.calls.upstream).toEqual([]);
      expect(changed.calls.audit.at(-1)).toMatchObject({
        decisionId: 'dec-ALLOWED',
        outcome: 'deny',
        reason: 'TOOL_DEFINITION_CHANGED',
        check: 'invocation.definition',
      });
    }
    const same = harness({ currentDigest: () => 'sha256:pinned' });
    await expect(same.service.callTool(call())).resolves.toMatchObject({ kind: 'handle' });
    expect(same.calls.upstream).toHaveLength(1);
  });

  it('consumes no approval before the intent is durable', async () => {
    const d = decision('allow', 'ALLOWED', { approvalToConsume: 'apr-1' });
    const late = harness({
      decide: d,
      auditPublished: () => Promise.reject(new Error('flush timed out')),
    });
    expect(refused(await late.service.callTool(call())).reason).toBe('AUDIT_UNAVAILABLE');
    expect(late.calls.events).not.toContain('consume');
    expect(late.calls.events).not.toContain('upstream');
    const ok = harness({ decide: d, auditPublished: () => Promise.resolve() });
    await expect(ok.service.callTool(call())).resolves.toMatchObject({ kind: 'handle' });
    expect(ok.calls.events).toEqual(['publish', 'consume', 'upstream']);
  });

  it('answers the success when only the outcome entry is lost (the intent is on record)', async () => {
    const { service, calls } = harness({ auditPublished: () => Promise.resolve(), auditTakes: 1 });
    await expect(service.callTool(call())).resolves.toMatchObject({
      kind: 'handle',
      decisionId: allow.id,
    });
    expect(calls.upstream).toHaveLength(1);
    expect(calls.audit.map((e) => e.check)).toEqual(['invocation.intent']);
  });

  it('labels output read under a sensitive path with that sensitivity; other paths keep the default', async () => {
    const entry: CallableCapability = {
      capability: readFile,
      inlinePreview: false,
      sensitivity: 'internal',
      sensitivePaths: [
        { prefix: '/root', sensitivity: 'secret' },
        { prefix: '/other', sensitivity: 'x' },
      ],
    };
    const secret = harness({ manifest: { 'fs/read_file': entry } });
    await secret.service.callTool(call());
    expect(secret.calls.put[0]?.labels['sensitivity']).toBe('secret');
    const plain = harness({
      manifest: {
        'fs/read_file': { ...entry, sensitivePaths: [{ prefix: '/roo', sensitivity: 'secret' }] },
      },
    });
    await plain.service.callTool(call());
    // '/roo' is not a path prefix of '/root/a.txt' on a segment boundary.
    expect(plain.calls.put[0]?.labels['sensitivity']).toBe('internal');
  });

  it('does not wait for publication to answer a denial', async () => {
    let waited = 0;
    const { service } = harness({
      decide: decision('deny', 'NO_MATCHING_GRANT'),
      auditPublished: () => Promise.resolve(void waited++),
    });
    refused(await service.callTool(call()));
    expect(waited).toBe(0);
  });

  it('on allow invokes the provider once, stores the output as a handle and audits the invocation', async () => {
    const { service, calls } = harness();
    const out = await service.callTool(call());
    expect(out).toEqual({
      kind: 'handle',
      handleId: 'hdl-1',
      decisionId: allow.id,
      sizeBytes: 9,
      toolError: false,
    });
    expect(calls.upstream).toEqual([{ capabilityId: 'fs/read_file', args: { path: 'a.txt' } }]);
    expect(calls.put).toHaveLength(1);
    expect(calls.put[0]?.ownerPrincipalId).toBe('alice');
    expect(Buffer.from(calls.put[0]?.payload ?? []).toString()).toBe('file body');
    expect(calls.put[0]?.labels).toEqual({
      provider: 'fs',
      capability: 'fs/read_file',
      encoding: 'text',
      sensitivity: 'internal',
    });
    // The decision saw the canonical resource, the arguments digest and the observed definition.
    expect(calls.decide[0]?.call).toMatchObject({
      capabilityId: 'fs/read_file',
      argumentsDigest: argumentsDigest({ path: 'a.txt' }),
      observedDefinitionDigest: 'sha256:pinned',
      resources: [
        {
          argument: 'path',
          index: 0,
          facts: { status: 'resolved', resource: { canonical: '/root/a.txt' } },
        },
      ],
    });
    expect(calls.decide[0]?.auditAvailable).toBe(true);
    expect(calls.audit).toHaveLength(2);
    expect(calls.audit[0]).toMatchObject({
      decisionId: allow.id,
      check: 'invocation.intent',
      outcome: 'allow',
      resourceCanonical: '/root/a.txt',
      handleIds: [],
    });
    expect(calls.audit[1]).toMatchObject({
      decisionId: allow.id,
      endpointFamily: 'tools/call',
      check: 'invocation',
      outcome: 'allow',
      principalId: 'alice',
      capabilityId: 'fs/read_file',
      resourceCanonical: '/root/a.txt',
      handleIds: ['hdl-1'],
      traceId: 'trace-1',
    });
    // No preview unless the capability allows it.
    expect(calls.peek).toHaveLength(0);
  });

  it('returns an inline preview through the vault only where the capability allows it', async () => {
    const { service, calls } = harness();
    const out = await service.callTool(call({ url: 'https://example.org' }, 'web/fetch'));
    expect(out).toMatchObject({ kind: 'handle', preview: { text: 'hello', truncated: false } });
    expect(calls.peek).toEqual([{ principalId: 'alice', handleId: 'hdl-1', maxBytes: 16 }]);
  });

  it.each<[string, Decision]>([
    ['NO_MATCHING_GRANT', decision('deny', 'NO_MATCHING_GRANT', { invariant: 'I5' })],
    ['RESOURCE_DENIED', decision('deny', 'RESOURCE_DENIED', { invariant: 'I3' })],
    ['TOOL_DEFINITION_CHANGED', decision('deny', 'TOOL_DEFINITION_CHANGED', { invariant: 'I1' })],
    ['APPROVAL_REQUIRED', decision('deny', 'APPROVAL_REQUIRED', { invariant: 'I2' })],
    ['CAPABILITY_UNKNOWN', decision('deny', 'CAPABILITY_UNKNOWN', { invariant: 'I1' })],
    ['AUDIT_UNAVAILABLE', decision('deny', 'AUDIT_UNAVAILABLE', { invariant: 'I7' })],
  ])(
    'a %s deny is returned with its reason, never reaches the provider and is not re-audited',
    async (reason, d) => {
      const { service, calls } = harness({ decide: d });
      const out = refused(await service.callTool(call()));
      expect(out).toEqual({
        kind: 'refused',
        reason,
        message: d.explanation,
        decisionId: d.id,
        invariant: d.invariant,
        // An approval-gated call that presented no approval also gets a pending request filed.
        ...(reason === 'APPROVAL_REQUIRED'
          ? { approvalRequestId: 'apr-1', approvalExpiresAt: 9000 }
          : {}),
      });
      expect(calls.upstream).toHaveLength(0);
      expect(calls.put).toHaveLength(0);
      expect(calls.audit).toHaveLength(0);
    },
  );

  it('passes a canonicaliser refusal to the decision point as facts', async () => {
    const { service, calls } = harness({ decide: decision('deny', 'RESOURCE_DENIED') });
    await service.callTool(call({ path: '../etc/passwd' }));
    expect(calls.decide[0]?.call.resources?.[0]?.facts).toMatchObject({
      status: 'denied',
      rule: 'path.outside_roots',
    });
    expect(calls.upstream).toHaveLength(0);
  });

  it('tells the decision point when the audit buffer is full', async () => {
    const { service, calls } = harness({
      auditAvailable: false,
      decide: decision('deny', 'AUDIT_UNAVAILABLE'),
    });
    await service.callTool(call());
    expect(calls.decide[0]?.auditAvailable).toBe(false);
    expect(calls.upstream).toHaveLength(0);
  });

  it('refuses with POLICY_UNAVAILABLE when the decision point cannot be reached, recorded under the id the agent gets', async () => {
    const { service, calls } = harness({ decide: new Error('DEADLINE_EXCEEDED') });
    const out = refused(await service.callTool(call()));
    expect(out.reason).toBe('POLICY_UNAVAILABLE');
    expect(out.decisionId).toMatch(/^dec_/);
    expect(calls.upstream).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({
        decisionId: out.decisionId,
        outcome: 'deny',
        reason: 'POLICY_UNAVAILABLE',
        check: 'edge.decide_transport',
        principalId: 'alice',
        capabilityId: 'fs/read_file',
        resourceCanonical: '/root/a.txt',
        traceId: 'trace-1',
      }),
    ]);
    // The neighbour: the decision point answering again, the same call is allowed.
    const up = harness();
    await expect(up.service.callTool(call())).resolves.toMatchObject({ kind: 'handle' });
  });

  it('keeps the reason of a typed decision-point error and records it', async () => {
    const { service, calls } = harness({ decide: new HcpError('INPUT_INVALID', 'call: bad') });
    const out = refused(await service.callTool(call()));
    expect(out.reason).toBe('INPUT_INVALID');
    expect(calls.audit).toEqual([
      expect.objectContaining({ decisionId: out.decisionId, reason: 'INPUT_INVALID' }),
    ]);
  });

  it('refuses with POLICY_UNAVAILABLE, recorded, when the manifest cannot be read', async () => {
    const { service, calls } = harness({ manifestError: new Error('grant-store down') });
    const out = refused(await service.callTool(call()));
    expect(out.reason).toBe('POLICY_UNAVAILABLE');
    expect(calls.decide).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({
        decisionId: out.decisionId,
        check: 'edge.manifest',
        capabilityId: 'fs/read_file',
        outcome: 'deny',
      }),
    ]);
  });

  it('answers AUDIT_UNAVAILABLE under the same id when a dependency refusal cannot be recorded', async () => {
    const { service, calls } = harness({ decide: new Error('UNAVAILABLE'), auditFails: true });
    const out = refused(await service.callTool(call()));
    expect(out).toMatchObject({ reason: 'AUDIT_UNAVAILABLE', invariant: 'I7' });
    expect(out.decisionId).toMatch(/^dec_/);
    expect(calls.upstream).toHaveLength(0);
  });

  it.each<[string, unknown]>([
    ['a non-object', 'path'],
    ['an array', ['a']],
    ['too deep', nest(CALL_LIMITS.maxArgumentDepth + 1)],
    ['too large', { path: 'x'.repeat(CALL_LIMITS.maxArgumentBytes) }],
  ])('refuses %s arguments with INPUT_INVALID before deciding, and audits it', async (_l, args) => {
    const { service, calls } = harness();
    const out = refused(await service.callTool(call(args)));
    expect(out.reason).toBe('INPUT_INVALID');
    expect(calls.decide).toHaveLength(0);
    expect(calls.upstream).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({
        decisionId: out.decisionId,
        reason: 'INPUT_INVALID',
        check: 'input_bounds',
        outcome: 'deny',
      }),
    ]);
  });

  it('never invokes when the intent cannot be recorded (the audit buffer is full)', async () => {
    const { service, calls } = harness({ auditFails: true });
    const out = refused(await service.callTool(call()));
    expect(out).toMatchObject({
      reason: 'AUDIT_UNAVAILABLE',
      decisionId: allow.id,
      invariant: 'I7',
    });
    expect(out).not.toHaveProperty('handleId');
    expect(calls.upstream).toHaveLength(0);
  });

  it('turns an untyped provider failure into an audited PROVIDER_UNAVAILABLE refusal', async () => {
    const { service, calls } = harness({ upstream: new Error('boom') });
    const out = refused(await service.callTool(call()));
    expect(out).toMatchObject({ reason: 'PROVIDER_UNAVAILABLE', decisionId: allow.id });
    expect(calls.put).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({ check: 'invocation.intent', outcome: 'allow' }),
      expect.objectContaining({
        check: 'invocation',
        outcome: 'deny',
        reason: 'PROVIDER_UNAVAILABLE',
        decisionId: allow.id,
      }),
    ]);
  });

  it("keeps the upstream port's reason for a typed provider failure (arguments rejected)", async () => {
    const { service } = harness({ upstream: new HcpError('INPUT_INVALID', 'rejected') });
    expect(refused(await service.callTool(call())).reason).toBe('INPUT_INVALID');
  });

  it('reports a request the provider made that was refused on its way out as I3, naming the rule', async () => {
    const { service, calls } = harness({
      upstream: new HcpError('RESOURCE_DENIED', 'egress refused http://127.0.0.1/', {
        rule: 'url.private_address',
      }),
    });
    const out = refused(await service.callTool(call()));
    expect(out).toMatchObject({ reason: 'RESOURCE_DENIED', invariant: 'I3', decisionId: allow.id });
    expect(out.message).toContain('url.private_address');
    expect(out.message).not.toContain('127.0.0.1');
    expect(calls.put).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({ check: 'invocation.intent', outcome: 'allow' }),
      expect.objectContaining({
        check: 'invocation',
        outcome: 'deny',
        reason: 'RESOURCE_DENIED',
        invariant: 'I3',
        rule: 'url.private_address',
      }),
    ]);
  });

  it('audits a vault refusal after the provider ran', async () => {
    const { service, calls } = harness({
      putError: new HcpError('PAYLOAD_TOO_LARGE', 'too big'),
    });
    const out = refused(await service.callTool(call()));
    expect(out.reason).toBe('PAYLOAD_TOO_LARGE');
    expect(calls.audit[1]).toMatchObject({ check: 'invocation', reason: 'PAYLOAD_TOO_LARGE' });
  });

  it('names a vault that cannot be reached after the provider ran VAULT_UNAVAILABLE, not a size refusal', async () => {
    const { service, calls } = harness({ putError: new Error('UNAVAILABLE') });
    const out = refused(await service.callTool(call()));
    expect(out.reason).toBe('VAULT_UNAVAILABLE');
    expect(calls.audit[1]).toMatchObject({ check: 'invocation', reason: 'VAULT_UNAVAILABLE' });
  });

  it('stores a tool error (isError) as a handle too, flagged, so its text is not inlined', async () => {
    const { service } = harness({
      upstream: { content: [{ type: 'text', text: 'ENOENT' }], isError: true, sizeBytes: 6 },
    });
    expect(await service.callTool(call())).toMatchObject({ kind: 'handle', toolError: true });
  });

  it('consumes the approval of an approval-backed allow before invoking, once', async () => {
    const d = decision('allow', 'ALLOWED', { approvalToConsume: 'apr-1' });
    const { service, calls } = harness({ decide: d });
    await service.callTool({ ...call(), approvalId: 'apr-1' });
    expect(calls.consume).toEqual([
      {
        approvalId: 'apr-1',
        principalId: 'alice',
        decisionId: d.id,
        // grant-store re-checks the binding: the same digest the decision point compared.
        bindingDigest: approvalBindingDigest({
          principalId: 'alice',
          capabilityId: 'fs/read_file',
          canonicalResources: [{ argument: 'path', index: 0, canonical: '/root/a.txt' }],
          argumentsDigest: argumentsDigest({ path: 'a.txt' }),
        }),
      },
    ]);
    expect(calls.request).toHaveLength(0);
    expect(calls.upstream).toHaveLength(1);
    expect(calls.audit[0]?.approvalId).toBe('apr-1');
  });

  it('never invokes when the approval was already consumed (replay)', async () => {
    const { service, calls } = harness({
      decide: decision('allow', 'ALLOWED', { approvalToConsume: 'apr-1' }),
      consumeError: new HcpError('APPROVAL_CONSUMED', 'used'),
    });
    expect(refused(await service.callTool(call())).reason).toBe('APPROVAL_CONSUMED');
    expect(calls.upstream).toHaveLength(0);
  });

  it('decides over an unresolvable resource when the canonicaliser throws', async () => {
    const { service, calls } = harness({
      decide: decision('deny', 'RESOURCE_UNRESOLVABLE'),
      canonicalizeError: new Error('EIO'),
    });
    expect(refused(await service.callTool(call())).reason).toBe('RESOURCE_UNRESOLVABLE');
    expect(calls.decide[0]?.call.resources?.[0]).toMatchObject({ argument: 'path', index: 0 });
    expect(calls.decide[0]?.call.resources?.[0]?.facts).toMatchObject({
      status: 'unresolvable',
      rule: 'canonicalizer.error',
      raw: 'a.txt',
    });
    expect(calls.upstream).toHaveLength(0);
  });

  it('fails closed when the decision point allows a capability the edge has no manifest for', async () => {
    const { service, calls } = harness({ manifest: {} });
    expect(refused(await service.callTool(call())).reason).toBe('CAPABILITY_UNKNOWN');
    expect(calls.upstream).toHaveLength(0);
  });
});

describe('CallService.peek', () => {
  it('returns the vault preview for the owner', async () => {
    const { service, calls } = harness();
    const out = await service.peek({ principal: alice, session, handleId: 'hdl-9', maxBytes: 10 });
    expect(out).toMatchObject({ kind: 'preview', text: 'hello', truncated: false });
    expect(calls.peek).toEqual([{ principalId: 'alice', handleId: 'hdl-9', maxBytes: 10 }]);
  });

  it("refuses another principal's handle with the vault's reason, under a decision id the audit holds", async () => {
    const { service, calls } = harness();
    const bob: Principal = { id: 'bob', kind: 'agent' };
    const out = await service.peek({ principal: bob, session, handleId: 'hdl-9' });
    const refusal = refused(out);
    expect(refusal).toMatchObject({ reason: 'HANDLE_NOT_OWNED', invariant: 'I4' });
    expect(refusal.decisionId).toMatch(/^dec_/);
    expect(calls.audit).toEqual([
      expect.objectContaining({
        decisionId: refusal.decisionId,
        principalId: 'bob',
        endpointFamily: 'handle/peek',
        outcome: 'deny',
        reason: 'HANDLE_NOT_OWNED',
        invariant: 'I4',
        check: 'vault.peek',
        handleIds: ['hdl-9'],
      }),
    ]);
  });

  it("passes on the vault's recorded refusal under the vault's decision id, recording nothing twice", async () => {
    const { service, calls } = harness({
      peekError: new HcpError('HANDLE_NOT_OWNED', 'not yours', { decisionId: 'dec_vault' }),
    });
    const out = refused(await service.peek({ principal: alice, session, handleId: 'hdl-9' }));
    expect(out).toMatchObject({
      reason: 'HANDLE_NOT_OWNED',
      decisionId: 'dec_vault',
      invariant: 'I4',
    });
    expect(calls.audit).toHaveLength(0);
  });

  it('records a vault that cannot be reached under a decision id of its own', async () => {
    const { service, calls } = harness({ peekError: new Error('UNAVAILABLE') });
    const out = refused(await service.peek({ principal: alice, session, handleId: 'hdl-9' }));
    expect(out.reason).toBe('VAULT_UNAVAILABLE');
    expect(out.decisionId).toMatch(/^dec_/);
    expect(calls.audit).toEqual([
      expect.objectContaining({ decisionId: out.decisionId, check: 'vault.peek', outcome: 'deny' }),
    ]);
  });

  it('answers AUDIT_UNAVAILABLE when that refusal cannot be audited', async () => {
    const { service } = harness({ auditFails: true });
    const bob: Principal = { id: 'bob', kind: 'agent' };
    const out = await service.peek({ principal: bob, session, handleId: 'hdl-9' });
    expect(refused(out).reason).toBe('AUDIT_UNAVAILABLE');
  });

  it('records nothing of its own for an allowed peek (the vault audits it)', async () => {
    const { service, calls } = harness();
    await service.peek({ principal: alice, session, handleId: 'hdl-9' });
    expect(calls.audit).toHaveLength(0);
  });

  it.each([0, -1, 1.5, CALL_LIMITS.maxPreviewBytes + 1])(
    'refuses maxBytes %p with INPUT_INVALID',
    async (maxBytes) => {
      const { service, calls } = harness();
      const out = await service.peek({ principal: alice, session, handleId: 'h', maxBytes });
      expect(refused(out).reason).toBe('INPUT_INVALID');
      expect(calls.peek).toHaveLength(0);
    },
  );
});

describe('CallService.pipe', () => {
  const source = handle('hdl-src', 'alice', { sensitivity: 'secret', provider: 'fs' });
  const pipe = (targetCapabilityId = 'fs/write_file', argumentName = 'content') => ({
    principal: alice,
    session,
    sourceHandleId: 'hdl-src',
    targetCapabilityId,
    argumentName,
    args: { path: 'out.txt' },
  });

  it('on allow resolves once, invokes the target once with the payload and stores a new handle', async () => {
    const { service, calls } = harness({ source });
    const out = await service.pipe(pipe());
    expect(out).toMatchObject({ kind: 'handle', handleId: 'hdl-1', decisionId: allow.id });
    expect(calls.decidePipe).toHaveLength(1);
    expect(calls.decidePipe[0]?.source).toEqual(source);
    expect(calls.decidePipe[0]?.target.endpointFamily).toBe('handle/pipe');
    expect(calls.decidePipe[0]?.target.call.argumentsDigest).toBe(
      argumentsDigest({ path: 'out.txt', content: { hcpHandle: 'hdl-src' } }),
    );
    expect(calls.resolve).toEqual([
      { principalId: 'alice', handleId: 'hdl-src', decisionId: allow.id },
    ]);
    expect(calls.upstream).toEqual([
      { capabilityId: 'fs/write_file', args: { path: 'out.txt', content: 'secret data' } },
    ]);
    // The derived output keeps the source's classification.
    expect(calls.put[0]?.labels).toMatchObject({
      sensitivity: 'secret',
      capability: 'fs/write_file',
      pipedFrom: 'hdl-src',
    });
    expect(calls.audit).toEqual([
      expect.objectContaining({
        endpointFamily: 'handle/pipe',
        check: 'invocation.intent',
        handleIds: ['hdl-src'],
      }),
      expect.objectContaining({
        endpointFamily: 'handle/pipe',
        check: 'invocation',
        handleIds: ['hdl-src', 'hdl-1'],
      }),
    ]);
  });

  it('to a denied target never resolves the payload nor invokes anything', async () => {
    const d = decision('deny', 'PIPE_TARGET_DENIED', {
      invariant: 'I6',
      targetReason: 'NO_MATCHING_GRANT',
    });
    const { service, calls } = harness({ source, decidePipe: d });
    const out = refused(await service.pipe(pipe('web/fetch', 'body')));
    expect(out).toMatchObject({
      reason: 'PIPE_TARGET_DENIED',
      targetReason: 'NO_MATCHING_GRANT',
      decisionId: d.id,
    });
    expect(calls.resolve).toHaveLength(0);
    expect(calls.upstream).toHaveLength(0);
    expect(calls.audit).toHaveLength(0);
  });

  it("passes no source metadata for another principal's handle (the PDP answers HANDLE_NOT_OWNED)", async () => {
    const { service, calls } = harness({
      source: handle('hdl-src', 'bob'),
      decidePipe: decision('deny', 'HANDLE_NOT_OWNED', { invariant: 'I4' }),
    });
    expect(refused(await service.pipe(pipe())).reason).toBe('HANDLE_NOT_OWNED');
    expect(calls.decidePipe[0]?.source).toBeUndefined();
    expect(calls.resolve).toHaveLength(0);
  });

  it.each<[string, string, Record<string, unknown>]>([
    ['an argument already given', 'content', { path: 'out.txt', content: 'x' }],
    ['an empty name', '', { path: 'out.txt' }],
  ])('refuses piping into %s with INPUT_INVALID before deciding', async (_l, name, args) => {
    const { service, calls } = harness({ source });
    const out = await service.pipe({ ...pipe('fs/write_file', name), args });
    expect(refused(out).reason).toBe('INPUT_INVALID');
    expect(refused(out).message).toContain('argumentName');
    expect(calls.decidePipe).toHaveLength(0);
    expect(calls.resolve).toHaveLength(0);
  });

  it('never invokes the target when the intent cannot be recorded', async () => {
    const { service, calls } = harness({ source, auditFails: true });
    expect(refused(await service.pipe(pipe())).reason).toBe('AUDIT_UNAVAILABLE');
    expect(calls.upstream).toHaveLength(0);
  });

  it('records a decision-point failure under its own id, naming the source handle', async () => {
    const { service, calls } = harness({ source, decidePipeError: new Error('UNAVAILABLE') });
    const out = refused(await service.pipe(pipe()));
    expect(out.reason).toBe('POLICY_UNAVAILABLE');
    expect(calls.resolve).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({
        decisionId: out.decisionId,
        endpointFamily: 'handle/pipe',
        check: 'edge.decide_transport',
        handleIds: ['hdl-src'],
      }),
    ]);
  });

  it("passes on the vault's own recorded refusal of a resolve, without a second entry", async () => {
    const { service, calls } = harness({
      source,
      resolveError: new HcpError('HANDLE_EXPIRED', 'expired', { decisionId: allow.id }),
    });
    const out = refused(await service.pipe(pipe()));
    expect(out).toMatchObject({ reason: 'HANDLE_EXPIRED', decisionId: allow.id, invariant: 'I4' });
    expect(calls.upstream).toHaveLength(0);
    expect(calls.audit).toHaveLength(0);
  });

  it('records a resolve that failed in transport as the outcome of the allow', async () => {
    const { service, calls } = harness({ source, resolveError: new Error('UNAVAILABLE') });
    const out = refused(await service.pipe(pipe()));
    expect(out).toMatchObject({ reason: 'VAULT_UNAVAILABLE', decisionId: allow.id });
    expect(calls.audit).toEqual([
      expect.objectContaining({ check: 'invocation', outcome: 'deny', decisionId: allow.id }),
    ]);
  });
});

describe('CallService approval requests (I2)', () => {
  const exec: Capability = {
    id: 'shell/exec',
    provider: 'shell',
    tool: 'exec',
    effects: ['execute'],
    risk: 'high',
    approvalRequired: true,
    requiredScopes: [],
    resourceArguments: [],
  };
  const manifest = {
    'shell/exec': { capability: exec, inlinePreview: false },
    'fs/read_file': { capability: readFile, inlinePreview: false },
    'fs/write_file': { capability: writeFile, inlinePreview: false },
  };
  const required = decision('deny', 'APPROVAL_REQUIRED', { invariant: 'I2' });
  const execCall = (args: Record<string, unknown>) => ({
    ...call(args, 'shell/exec'),
    observedDigest: undefined,
  });

  it('files a pending approval bound to exactly this call and returns its id with the deny', async () => {
    const { service, calls } = harness({ manifest, decide: required });
    const out = refused(await service.callTool(execCall({ cmd: 'ls' })));
    expect(out).toMatchObject({
      reason: 'APPROVAL_REQUIRED',
      decisionId: required.id,
      approvalRequestId: 'apr-1',
      approvalExpiresAt: 9000,
    });
    expect(calls.request).toEqual([
      {
        principalId: 'alice',
        capabilityId: 'shell/exec',
        bindingDigest: approvalBindingDigest({
          principalId: 'alice',
          capabilityId: 'shell/exec',
          canonicalResources: [],
          argumentsDigest: argumentsDigest({ cmd: 'ls' }),
        }),
        summary: expect.stringContaining('shell/exec'),
      },
    ]);
    // The summary never carries argument values.
    expect(calls.request[0]?.summary).not.toContain('ls)');
    expect(calls.upstream).toHaveLength(0);
  });

  it('binds the request to the canonical resource of a resource-bearing call', async () => {
    const { service, calls } = harness({ manifest, decide: required });
    await service.callTool(call({ path: 'a.txt' }));
    expect(calls.request[0]?.bindingDigest).toBe(
      approvalBindingDigest({
        principalId: 'alice',
        capabilityId: 'fs/read_file',
        canonicalResources: [{ argument: 'path', index: 0, canonical: '/root/a.txt' }],
        argumentsDigest: argumentsDigest({ path: 'a.txt' }),
      }),
    );
    expect(calls.request[0]?.summary).toContain('/root/a.txt');
  });

  it('files nothing when the call presented an approval (the decision stands as it is)', async () => {
    const { service, calls } = harness({ manifest, decide: required });
    const out = refused(
      await service.callTool({ ...execCall({ cmd: 'ls' }), approvalId: 'apr-0' }),
    );
    expect(out.reason).toBe('APPROVAL_REQUIRED');
    expect(out).not.toHaveProperty('approvalRequestId');
    expect(calls.request).toHaveLength(0);
  });

  it('files nothing for other denials', async () => {
    const { service, calls } = harness({ manifest, decide: decision('deny', 'NO_MATCHING_GRANT') });
    const out = refused(await service.callTool(execCall({ cmd: 'ls' })));
    expect(out).not.toHaveProperty('approvalRequestId');
    expect(calls.request).toHaveLength(0);
  });

  it('treats `confirm: true` as just an argument: still denied, and bound to different arguments', async () => {
    const { service, calls } = harness({ manifest, decide: required });
    await service.callTool(execCall({ cmd: 'ls' }));
    const out = refused(await service.callTool(execCall({ cmd: 'ls', confirm: true })));
    expect(out.reason).toBe('APPROVAL_REQUIRED');
    expect(calls.upstream).toHaveLength(0);
    expect(calls.decide[1]?.call.argumentsDigest).toBe(
      argumentsDigest({ cmd: 'ls', confirm: true }),
    );
    expect(calls.decide[1]?.call).not.toHaveProperty('approvalId');
    expect(calls.request[1]?.bindingDigest).not.toBe(calls.request[0]?.bindingDigest);
  });

  it('still returns the deny, without an id, when grant-store cannot file the request', async () => {
    const { service, calls } = harness({
      manifest,
      decide: required,
      requestError: new Error('UNAVAILABLE'),
    });
    const out = refused(await service.callTool(execCall({ cmd: 'ls' })));
    expect(out).toEqual(refusalFor(required));
    expect(calls.upstream).toHaveLength(0);
  });

  it('files a request for a pipe whose target needs approval, bound to the handle reference', async () => {
    const d = decision('deny', 'PIPE_TARGET_DENIED', {
      invariant: 'I6',
      targetReason: 'APPROVAL_REQUIRED',
    });
    const { service, calls } = harness({ manifest, decidePipe: d, source: handle('hdl-src') });
    const out = refused(
      await service.pipe({
        principal: alice,
        session,
        sourceHandleId: 'hdl-src',
        targetCapabilityId: 'fs/write_file',
        argumentName: 'content',
        args: { path: 'out.txt' },
      }),
    );
    expect(out).toMatchObject({ reason: 'PIPE_TARGET_DENIED', approvalRequestId: 'apr-1' });
    expect(calls.request[0]?.bindingDigest).toBe(
      approvalBindingDigest({
        principalId: 'alice',
        capabilityId: 'fs/write_file',
        canonicalResources: [{ argument: 'path', index: 0, canonical: '/root/out.txt' }],
        argumentsDigest: argumentsDigest({ path: 'out.txt', content: { hcpHandle: 'hdl-src' } }),
      }),
    );
    expect(calls.resolve).toHaveLength(0);
  });
});

describe('CallService argument validation (pinned input schema)', () => {
  /** Requires `path` to be a string; anything else names the field. */
  const pathValidator: ArgumentValidatorPort = {
    validate: (_id, args) =>
      typeof args['path'] === 'string' ? undefined : 'arguments.path: must be a string',
  };

  it('refuses arguments the pinned schema rejects, locally, before deciding, and audits it', async () => {
    const { service, calls } = harness({ validator: pathValidator });
    const out = refused(await service.callTool(call({ path: 42 })));
    expect(out).toMatchObject({
      reason: 'INPUT_INVALID',
      message: 'arguments.path: must be a string',
    });
    // The validator is told the manifest's pin, so it checks the reviewed definition's schema.
    expect(calls.validate).toEqual([
      { capabilityId: 'fs/read_file', args: { path: 42 }, pinnedDigest: 'sha256:pinned' },
    ]);
    expect(calls.decide).toHaveLength(0);
    expect(calls.upstream).toHaveLength(0);
    expect(calls.audit).toEqual([
      expect.objectContaining({
        decisionId: out.decisionId,
        reason: 'INPUT_INVALID',
        check: 'input_schema',
        outcome: 'deny',
        capabilityId: 'fs/read_file',
      }),
    ]);
  });

  it('decides and invokes arguments the pinned schema accepts', async () => {
    const { service, calls } = harness({ validator: pathValidator });
    expect(await service.callTool(call({ path: 'a.txt' }))).toMatchObject({ kind: 'handle' });
    expect(calls.decide).toHaveLength(1);
    expect(calls.upstream).toHaveLength(1);
  });

  it('fails closed when the validator itself throws', async () => {
    const { service, calls } = harness({
      validator: {
        validate: () => {
          throw new Error('schema compiler crashed');
        },
      },
    });
    expect(refused(await service.callTool(call())).reason).toBe('INPUT_INVALID');
    expect(calls.decide).toHaveLength(0);
  });

  it('leaves an unknown capability to the decision point (CAPABILITY_UNKNOWN, audited there)', async () => {
    const { service, calls } = harness({
      validator: pathValidator,
      decide: decision('deny', 'CAPABILITY_UNKNOWN', { invariant: 'I1' }),
    });
    const out = refused(await service.callTool(call({ path: 42 }, 'nope/tool')));
    expect(out.reason).toBe('CAPABILITY_UNKNOWN');
    expect(calls.validate).toHaveLength(0);
  });

  describe('on a pipe', () => {
    const source = handle('hdl-src');
    /** write_file needs a string `content` of at most 5 characters. */
    const contentValidator: ArgumentValidatorPort = {
      validate: (_id, args) => {
        const content = args['content'];
        return typeof content === 'string' && content.length <= 5
          ? undefined
          : 'arguments.content: must be a string of at most 5 characters';
      },
    };
    const pipe = {
      principal: alice,
      session,
      sourceHandleId: 'hdl-src',
      targetCapabilityId: 'fs/write_file',
      argumentName: 'content',
      args: { path: 'out.txt' },
    };

    it('checks the real payload after the allow and never invokes on a mismatch', async () => {
      const { service, calls } = harness({ source, validator: contentValidator });
      const out = refused(await service.pipe(pipe));
      expect(out).toMatchObject({ reason: 'INPUT_INVALID', decisionId: allow.id });
      expect(calls.validate).toEqual([
        {
          capabilityId: 'fs/write_file',
          args: { path: 'out.txt', content: 'secret data' },
          pinnedDigest: undefined,
        },
      ]);
      expect(calls.upstream).toHaveLength(0);
      expect(calls.audit).toEqual([
        expect.objectContaining({ check: 'invocation', reason: 'INPUT_INVALID', outcome: 'deny' }),
      ]);
    });

    it('invokes when the payload fits the pinned schema', async () => {
      const { service, calls } = harness({
        source,
        validator: { validate: () => undefined },
      });
      expect(await service.pipe(pipe)).toMatchObject({ kind: 'handle' });
      expect(calls.upstream).toHaveLength(1);
    });
  });
});

describe('boundedArguments', () => {
  it('treats absent arguments as empty and keeps a plain object', () => {
    expect(boundedArguments(undefined)).toEqual({});
    expect(boundedArguments({ a: 1 })).toEqual({ a: 1 });
  });

  it('refuses a cyclic value without throwing', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(typeof boundedArguments(cyclic)).toBe('string');
  });
});

function refusalFor(d: Decision): CallRefusal {
  return {
    kind: 'refused',
    reason: d.reason,
    message: d.explanation,
    decisionId: d.id,
    ...(d.invariant === undefined ? {} : { invariant: d.invariant }),
  };
}

function nest(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 0; i < depth; i++) value = { v: value };
  return value;
}

/**
 * The call path over the real policy engine and the fixture world of libs/policy (grants under
 * /data/app, fetch of api.example.com), with in-memory ports around it: the decisions are the
 * engine's, so these tests show what a multi-resource call or a pipe into a resource decides.
 */
function engineWorld(
  options: {
    /** Handles in the vault: record and payload. */
    handles?: Record<string, { record: HandleRecord; payload: string | Uint8Array }>;
    /** Capability overrides by id (e.g. approvalRequired). */
    overrides?: Record<string, Partial<Capability>>;
    /** Payloads the vault answers on the second and later reads of a handle (a changed handle). */
    reread?: Record<string, string>;
  } = {},
) {
  const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
  const capabilities = new Map(
    CAPABILITIES.map((c) => [c.id, { ...c, ...options.overrides?.[c.id] }]),
  );
  const approvals = new Map<string, Approval>();
  const audit: AuditEntry[] = [];
  const sink = { record: (e: AuditEntry) => void audit.push(e), available: () => true };
  const calls = {
    decide: [] as DecideRequestFacts[],
    decidePipe: [] as DecidePipeFacts[],
    upstream: [] as { capabilityId: string; args: Record<string, unknown> }[],
    resolve: [] as { handleId: string; decisionId: string }[],
    describe: [] as string[],
    request: [] as ApprovalRequestInput[],
  };
  const handles = new Map(Object.entries(options.handles ?? {}));
  const reads = new Map<string, number>();
  /** The engine's request: the approval the PDP would fetch by id, the PDP's clock. */
  const engineCall = (f: DecideRequestFacts) => {
    const { approvalId, ...call } = f.call;
    const approval = approvalId === undefined ? undefined : approvals.get(approvalId);
    return { ...f, call: approval === undefined ? call : { ...call, approval }, now: NOW };
  };
  const contextOf = (f: DecideRequestFacts) => ({
    grants: GRANTS.filter((g) => g.principalId === f.principal?.id),
    capabilities,
  });
  /** The PDP records every decision it makes (I7); so does this stand-in. */
  const recorded = (d: Decision, f: DecideRequestFacts, handleIds: string[] = []) => {
    recordDecision(sink, d, {
      endpointFamily: f.endpointFamily ?? 'tools/call',
      call: engineCall(f).call,
      handleIds,
      ...(f.principal === undefined ? {} : { principal: f.principal }),
      session: f.session,
    });
    return d;
  };
  const ports: CallPorts = {
    now: () => NOW,
    decision: {
      decide: (f) => {
        calls.decide.push(f);
        return Promise.resolve(recorded(engine.decide(engineCall(f), contextOf(f)), f));
      },
      decidePipe: (f) => {
        calls.decidePipe.push(f);
        const { call, ...envelope } = engineCall(f.target);
        const d = engine.decidePipe(
          {
            ...envelope,
            target: call,
            sourceHandleId: f.sourceHandleId,
            ...(f.source === undefined ? {} : { source: f.source }),
          },
          contextOf(f.target),
        );
        return Promise.resolve(recorded(d, f.target, [f.sourceHandleId]));
      },
    },
    vault: {
      put: (input) => {
        const record = fixtureHandle(`hdl_out${handles.size}`, input.ownerPrincipalId, {
          labels: { ...input.labels },
          sizeBytes: input.payload.length,
        });
        handles.set(record.id, { record, payload: input.payload });
        return Promise.resolve(record);
      },
      peek: () => Promise.reject(new Error('not used')),
      describe: (input) => {
        calls.describe.push(input.handleId);
        const h = handles.get(input.handleId);
        return Promise.resolve(
          h !== undefined && h.record.ownerPrincipalId === input.principalId ? h.record : undefined,
        );
      },
      resolveForPipe: (input) => {
        calls.resolve.push({ handleId: input.handleId, decisionId: input.decisionId });
        const h = handles.get(input.handleId);
        if (h === undefined || h.record.ownerPrincipalId !== input.principalId)
          return Promise.reject(new HcpError('HANDLE_NOT_OWNED', `${input.handleId} not owned`));
        const n = (reads.get(input.handleId) ?? 0) + 1;
        reads.set(input.handleId, n);
        const payload = (n > 1 ? options.reread?.[input.handleId] : undefined) ?? h.payload;
        return Promise.resolve({
          handle: h.record,
          payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload,
        });
      },
    },
    upstream: {
      callTool: (capabilityId, args) => {
        calls.upstream.push({ capabilityId, args });
        return Promise.resolve({
          content: [{ type: 'text', text: 'done' }],
          isError: false,
          sizeBytes: 4,
        });
      },
    },
    // As libs/canonical would answer for a tree where every absolute path exists and every host
    // resolves publicly; a relative path or a `..` is refused.
    canonicalizer: {
      canonicalize: (capability, args) => {
        const out: ArgumentResource[] = [];
        for (const arg of capability.resourceArguments) {
          if (!(arg.name in args)) continue;
          const values = arg.many === true ? (args[arg.name] as unknown[]) : [args[arg.name]];
          values.forEach((raw, index) => {
            const text = String(raw);
            const facts: ResourceFacts =
              arg.canonicalizer === 'path' && (!text.startsWith('/') || text.includes('..'))
                ? {
                    status: 'denied',
                    kind: 'path',
                    raw: text,
                    rule: 'path.outside_roots',
                    detail: 'outside every root',
                  }
                : arg.canonicalizer === 'url'
                  ? {
                      status: 'resolved',
                      resource: {
                        kind: 'url',
                        raw: text,
                        canonical: text,
                        host: new URL(text).hostname,
                        addresses: ['93.184.216.34'],
                      },
                    }
                  : {
                      status: 'resolved',
                      resource: { kind: arg.canonicalizer, raw: text, canonical: text },
                    };
            out.push({ argument: arg.name, index, facts });
          });
        }
        return Promise.resolve(out);
      },
      maxRawLength: (_capability, kind) => (kind === 'path' ? 4096 : 8192),
    },
    manifest: {
      capability: (id) => {
        const capability = capabilities.get(id);
        return Promise.resolve(
          capability === undefined ? undefined : { capability, inlinePreview: false },
        );
      },
    },
    approvals: {
      request: (input) => {
        calls.request.push(input);
        const approval: Approval = {
          id: `apr_${calls.request.length}`,
          principalId: input.principalId,
          capabilityId: input.capabilityId,
          bindingDigest: input.bindingDigest,
          state: 'pending',
          expiresAt: NOW + 60_000,
        };
        approvals.set(approval.id, approval);
        return Promise.resolve(approval);
      },
      consume: () => Promise.resolve(),
    },
    audit: sink,
  };
  /** An approver approves a pending request (in grant-store, never through the agent). */
  const approve = (id: string) => {
    const a = approvals.get(id);
    if (a !== undefined) approvals.set(id, { ...a, state: 'approved' });
  };
  return { service: new CallService(ports), calls, audit, approve };
}

const aliceSession = activeSession('alice');
const callAs = (capabilityId: string, args: Record<string, unknown>, approvalId?: string) => ({
  principal: alice,
  session: aliceSession,
  capabilityId,
  args,
  ...(approvalId === undefined ? {} : { approvalId }),
});

describe('CallService over the policy engine: every resource argument is decided', () => {
  it('denies move_file whose source is outside the grant though its destination is inside (audited)', async () => {
    const { service, calls, audit } = engineWorld();
    const out = refused(
      await service.callTool(
        callAs('fs/move_file', { source: '/etc/passwd', destination: '/data/app/out/p' }),
      ),
    );
    expect(out.reason).toBe('NO_MATCHING_GRANT');
    expect(out.message).toContain('source (delete)');
    expect(calls.decide[0]?.call.resources?.map((r) => r.argument)).toEqual([
      'source',
      'destination',
    ]);
    expect(calls.upstream).toHaveLength(0);
    expect(audit).toEqual([
      expect.objectContaining({
        decisionId: out.decisionId,
        outcome: 'deny',
        reason: 'NO_MATCHING_GRANT',
        resourceCanonical: 'source: /etc/passwd\ndestination: /data/app/out/p',
      }),
    ]);
  });

  it('allows move_file with both paths inside the grant, and invokes it once', async () => {
    const { service, calls } = engineWorld();
    const args = { source: '/data/app/out/a', destination: '/data/app/out/b' };
    expect(await service.callTool(callAs('fs/move_file', args))).toMatchObject({
      kind: 'handle',
    });
    expect(calls.upstream).toEqual([{ capabilityId: 'fs/move_file', args }]);
  });

  it('denies read_multiple_files when one of its paths is outside the grant; allows all inside', async () => {
    const { service, calls } = engineWorld();
    const out = refused(
      await service.callTool(
        callAs('fs/read_multiple_files', { paths: ['/data/app/a', '/data/bob/b', '/data/app/c'] }),
      ),
    );
    expect(out.reason).toBe('NO_MATCHING_GRANT');
    expect(out.message).toContain('paths[1]');
    expect(calls.upstream).toHaveLength(0);
    expect(
      await service.callTool(
        callAs('fs/read_multiple_files', { paths: ['/data/app/a', '/data/app/c'] }),
      ),
    ).toMatchObject({ kind: 'handle' });
    expect(calls.upstream).toHaveLength(1);
  });

  describe('approvals of a call with several resources (I2)', () => {
    const overrides = { 'fs/move_file': { approvalRequired: true } };
    const move = (source: string, approvalId?: string) =>
      callAs('fs/move_file', { source, destination: '/data/app/out/b' }, approvalId);

    it('files a request naming every resource with its role, bound to all of them', async () => {
      const { service, calls, approve } = engineWorld({ overrides });
      const out = refused(await service.callTool(move('/data/app/out/a')));
      expect(out).toMatchObject({ reason: 'APPROVAL_REQUIRED', approvalRequestId: 'apr_1' });
      expect(calls.request[0]?.summary).toContain(
        'on source (delete): /data/app/out/a; destination (write): /data/app/out/b',
      );
      expect(calls.request[0]?.bindingDigest).toBe(
        approvalBindingDigest({
          principalId: 'alice',
          capabilityId: 'fs/move_file',
          canonicalResources: [
            { argument: 'source', index: 0, canonical: '/data/app/out/a' },
            { argument: 'destination', index: 0, canonical: '/data/app/out/b' },
          ],
          argumentsDigest: argumentsDigest({
            source: '/data/app/out/a',
            destination: '/data/app/out/b',
          }),
        }),
      );
      // Approved, the identical call runs.
      approve('apr_1');
      expect(await service.callTool(move('/data/app/out/a', 'apr_1'))).toMatchObject({
        kind: 'handle',
      });
      expect(calls.upstream).toHaveLength(1);
    });

    it('refuses an approval given for another source as APPROVAL_MISMATCH', async () => {
      const { service, calls, approve } = engineWorld({ overrides });
      refused(await service.callTool(move('/data/app/out/c')));
      approve('apr_1');
      const out = refused(await service.callTool(move('/data/app/out/a', 'apr_1')));
      expect(out.reason).toBe('APPROVAL_MISMATCH');
      expect(calls.upstream).toHaveLength(0);
    });

    it('bounds each resource in the summary', async () => {
      const { service, calls } = engineWorld({ overrides });
      const long = `/data/app/out/${'x'.repeat(400)}`;
      refused(await service.callTool(move(long)));
      const summary = calls.request[0]?.summary ?? '';
      expect(summary).toContain(`source (delete): ${long.slice(0, 256)};`);
      expect(summary).not.toContain(long);
    });
  });
});

describe('CallService.pipe into a resource argument (the handle names the resource)', () => {
  const owned = (id: string, payload: string | Uint8Array, over: Partial<HandleRecord> = {}) => ({
    record: fixtureHandle(id, 'alice', {
      sizeBytes: typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length,
      ...over,
    }),
    payload,
  });
  const pipeAs = (
    sourceHandleId: string,
    targetCapabilityId: string,
    argumentName: string,
    args: Record<string, unknown> = {},
  ): PipeInput => ({
    principal: alice,
    session: aliceSession,
    sourceHandleId,
    targetCapabilityId,
    argumentName,
    args,
    ...(targetCapabilityId === 'fs/read_file'
      ? { observedDigest: CAPABILITIES.find((c) => c.id === 'fs/read_file')?.definitionDigest }
      : {}),
  });

  it('allows a URL handle into fetch `url`: read under its own allow, decided on the URL, re-read, invoked', async () => {
    const { service, calls, audit } = engineWorld({
      handles: { hdl_url: owned('hdl_url', 'https://api.example.com/v1/items\n') },
    });
    const out = await service.pipe(pipeAs('hdl_url', 'fetch/fetch', 'url'));
    expect(out).toMatchObject({ kind: 'handle' });
    const allowId = (out as { decisionId: string }).decisionId;
    // The decision saw the content as the canonical resource and in the digested arguments.
    const target = calls.decidePipe[0]?.target;
    expect(target?.call.arguments).toEqual({ url: 'https://api.example.com/v1/items' });
    expect(target?.call.argumentsDigest).toBe(
      argumentsDigest({ url: 'https://api.example.com/v1/items' }),
    );
    expect(target?.call.resources).toEqual([
      {
        argument: 'url',
        index: 0,
        facts: expect.objectContaining({ status: 'resolved' }) as unknown,
      },
    ]);
    expect(calls.decidePipe[0]?.source?.id).toBe('hdl_url');
    // Two reads: one under the edge's own read allow (before deciding), one under the allow.
    const readEntry = audit.find((e) => e.check === PIPE_RESOURCE_READ_CHECK);
    expect(readEntry).toMatchObject({ outcome: 'allow', handleIds: ['hdl_url'] });
    expect(calls.resolve).toEqual([
      { handleId: 'hdl_url', decisionId: readEntry?.decisionId },
      { handleId: 'hdl_url', decisionId: allowId },
    ]);
    expect(readEntry?.decisionId).not.toBe(allowId);
    expect(calls.upstream).toEqual([
      { capabilityId: 'fetch/fetch', args: { url: 'https://api.example.com/v1/items' } },
    ]);
  });

  it('denies a secret-labelled URL handle into fetch `url` (PIPE_TARGET_DENIED, no flow:secret), invoking nothing', async () => {
    const { service, calls, audit } = engineWorld({
      handles: {
        hdl_url: owned('hdl_url', 'https://api.example.com/v1/items', {
          labels: { provider: 'fs', sensitivity: 'secret' },
        }),
      },
    });
    const out = refused(await service.pipe(pipeAs('hdl_url', 'fetch/fetch', 'url')));
    expect(out).toMatchObject({ reason: 'PIPE_TARGET_DENIED', invariant: 'I6' });
    expect(out.message).toContain('flow:secret');
    expect(out.message).not.toContain('api.example.com');
    expect(calls.resolve).toHaveLength(1);
    expect(calls.upstream).toHaveLength(0);
    expect(audit.at(-1)).toMatchObject({ decisionId: out.decisionId, outcome: 'deny' });
  });

  it('denies a path handle naming a file outside the grant with the target reason; allows one inside', async () => {
    const { service, calls } = engineWorld({
      handles: {
        hdl_out: owned('hdl_out', '/data/bob/notes.txt'),
        hdl_in: owned('hdl_in', '/data/app/notes.txt'),
      },
    });
    const out = refused(await service.pipe(pipeAs('hdl_out', 'fs/read_file', 'path')));
    expect(out).toMatchObject({
      reason: 'PIPE_TARGET_DENIED',
      targetReason: 'NO_MATCHING_GRANT',
    });
    // The explanation would quote the path (the handle's content): the agent never sees it.
    expect(out.message).not.toContain('/data/bob');
    expect(out.message).toContain('PIPE_TARGET_DENIED (target: NO_MATCHING_GRANT)');
    expect(calls.upstream).toHaveLength(0);
    expect(await service.pipe(pipeAs('hdl_in', 'fs/read_file', 'path'))).toMatchObject({
      kind: 'handle',
    });
    expect(calls.upstream).toEqual([
      { capabilityId: 'fs/read_file', args: { path: '/data/app/notes.txt' } },
    ]);
  });

  it("refuses another principal's handle as HANDLE_NOT_OWNED, reading nothing", async () => {
    const { service, calls, audit } = engineWorld({
      handles: {
        hdl_bob: {
          record: fixtureHandle('hdl_bob', 'bob', { sizeBytes: 19 }),
          payload: '/data/app/notes.txt',
        },
      },
    });
    const out = refused(await service.pipe(pipeAs('hdl_bob', 'fs/read_file', 'path')));
    expect(out).toMatchObject({ reason: 'HANDLE_NOT_OWNED', invariant: 'I4' });
    expect(calls.decidePipe[0]?.source).toBeUndefined();
    expect(calls.resolve).toHaveLength(0);
    expect(calls.upstream).toHaveLength(0);
    expect(audit).toEqual([
      expect.objectContaining({ decisionId: out.decisionId, reason: 'HANDLE_NOT_OWNED' }),
    ]);
  });

  it('refuses a handle larger than the argument bound before reading it, naming the bound', async () => {
    const big = `/data/app/${'x'.repeat(5000)}`;
    const { service, calls, audit } = engineWorld({ handles: { hdl_big: owned('hdl_big', big) } });
    const out = refused(await service.pipe(pipeAs('hdl_big', 'fs/read_file', 'path')));
    expect(out.reason).toBe('INPUT_INVALID');
    expect(out.message).toContain('at most 4096 bytes');
    expect(calls.resolve).toHaveLength(0);
    expect(calls.decidePipe).toHaveLength(0);
    expect(audit).toEqual([
      expect.objectContaining({ decisionId: out.decisionId, reason: 'INPUT_INVALID' }),
    ]);
  });

  it.each<[string, string | Uint8Array]>([
    ['a control character', '/data/app/a\u0000b'],
    ['an inner newline', '/data/app/a\n/data/app/b'],
    ['invalid UTF-8', Uint8Array.from([0x2f, 0xff, 0xfe])],
  ])(
    'refuses content with %s as INPUT_INVALID, never deciding nor quoting it',
    async (_l, payload) => {
      const { service, calls, audit } = engineWorld({
        handles: { hdl_x: owned('hdl_x', payload) },
      });
      const out = refused(await service.pipe(pipeAs('hdl_x', 'fs/read_file', 'path')));
      expect(out.reason).toBe('INPUT_INVALID');
      expect(out.message).not.toContain('/data/app');
      expect(calls.decidePipe).toHaveLength(0);
      expect(calls.upstream).toHaveLength(0);
      // The refusal is recorded under the read's decision id, after the read's allow.
      const read = audit.find((e) => e.check === PIPE_RESOURCE_READ_CHECK && e.outcome === 'allow');
      expect(out.decisionId).toBe(read?.decisionId);
      expect(audit.at(-1)).toMatchObject({ outcome: 'deny', decisionId: read?.decisionId });
    },
  );

  it('refuses a handle whose payload changed after it was decided, invoking nothing', async () => {
    const { service, calls } = engineWorld({
      handles: { hdl_in: owned('hdl_in', '/data/app/notes.txt') },
      reread: { hdl_in: '/data/bob/notes.txt' },
    });
    const out = refused(await service.pipe(pipeAs('hdl_in', 'fs/read_file', 'path')));
    expect(out.reason).toBe('INPUT_INVALID');
    expect(out.message).toContain('changed');
    expect(calls.resolve).toHaveLength(2);
    expect(calls.upstream).toHaveLength(0);
  });

  it('refuses a pipe into an array resource argument (many) as INPUT_INVALID', async () => {
    const { service, calls } = engineWorld({
      handles: { hdl_in: owned('hdl_in', '/data/app/notes.txt') },
    });
    const out = refused(await service.pipe(pipeAs('hdl_in', 'fs/read_multiple_files', 'paths')));
    expect(out.reason).toBe('INPUT_INVALID');
    expect(out.message).toContain('paths');
    expect(calls.describe).toHaveLength(0);
    expect(calls.resolve).toHaveLength(0);
  });

  it('decides the other resource arguments too: a move whose destination comes from a handle', async () => {
    const { service, calls } = engineWorld({
      handles: {
        hdl_in: owned('hdl_in', '/data/app/out/b'),
        hdl_out: owned('hdl_out', '/etc/cron.d/x'),
      },
    });
    const args = { source: '/data/app/out/a' };
    expect(await service.pipe(pipeAs('hdl_in', 'fs/move_file', 'destination', args))).toMatchObject(
      { kind: 'handle' },
    );
    expect(calls.upstream).toEqual([
      {
        capabilityId: 'fs/move_file',
        args: { source: '/data/app/out/a', destination: '/data/app/out/b' },
      },
    ]);
    const out = refused(await service.pipe(pipeAs('hdl_out', 'fs/move_file', 'destination', args)));
    expect(out).toMatchObject({ reason: 'PIPE_TARGET_DENIED', targetReason: 'NO_MATCHING_GRANT' });
    expect(calls.upstream).toHaveLength(1);
  });
});
