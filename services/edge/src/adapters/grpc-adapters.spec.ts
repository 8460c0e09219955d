import { randomBytes } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import {
  HcpError,
  approvalBindingDigest,
  argumentsDigest,
  type AuditEntry,
  type Capability,
  type Principal,
  type SessionFacts,
} from '@hcp/core';
import { OPERATOR_METADATA_KEY, startGrantStore, type GrantStoreDb } from '@hcp/grant-store';
import { startHandleVault, VaultKeyring, type VaultDb } from '@hcp/handle-vault';
import { DEFAULT_PROTOCOL_VERSIONS, startPolicyDecision } from '@hcp/policy-decision';
import {
  callUnary,
  createGrpcClient,
  InProcessBus,
  openDatabase,
  type Database,
} from '@hcp/platform';
import { eventually } from '@hcp/platform/testing';
import { approvalFromProto, core, grants, policy, vault } from '@hcp/proto';
import { CallService, type CallRefusal, type CallSuccess } from '../call/call.service';
import type { AuditPort } from '../call/ports';
import { ProviderRegistry, type ListedCapability } from '../providers/provider-registry';
import { startEchoMcpServer, type EchoMcpServer } from '../testing/echo-mcp-server';
import { canonicalizerPort, registryConfigOf } from './canonicalizer-port';
import { GrantStoreGrants } from './grant-store-grants';
import { GrantStoreManifest } from './grant-store-manifest';
import { grpcApprovalPort } from './grpc-approval-port';
import { grpcDecisionPort } from './grpc-decision-port';
import { grpcVaultPort } from './grpc-vault-port';
import { JsonSchemaArgumentValidator, pinnedSchemaSource } from './json-schema-argument-validator';
import { registryUpstreamPort } from './registry-upstream-port';

// The adapters against the REAL services, started in process the way apps/embedded does
// (gRPC over loopback, the in-process bus), and a real MCP server as the provider. One stack for
// the whole file; grant-store and handle-vault share one PGlite instance (their tables and
// migration tables are disjoint) to keep start-up cheap.

const alice: Principal = { id: 'alice', kind: 'agent' };
const bob: Principal = { id: 'bob', kind: 'agent' };
const session = (owner: string): SessionFacts => ({
  state: 'active',
  id: `ses-${owner}`,
  initialized: true,
  ownerPrincipalId: owner,
  negotiatedVersion: '2025-11-25',
});

async function hcpErrorOf(p: Promise<unknown>): Promise<HcpError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HcpError);
  return err as HcpError;
}

function refused(outcome: unknown): CallRefusal {
  expect(outcome).toMatchObject({ kind: 'refused' });
  return outcome as CallRefusal;
}

function succeeded(outcome: unknown): CallSuccess {
  expect(outcome).toMatchObject({ kind: 'handle' });
  return outcome as CallSuccess;
}

describe('edge adapters against the real grant-store, policy-decision and handle-vault', () => {
  const bus = new InProcessBus();
  const auditEntries: AuditEntry[] = [];
  const audit: AuditPort = { record: (e) => void auditEntries.push(e), available: () => true };
  const closers: (() => Promise<void>)[] = [];
  let database: Database<GrantStoreDb & VaultDb>;
  let grantClient: grants.GrantStoreClient;
  let pdpClient: policy.PolicyDecisionClient;
  let vaultClient: vault.HandleVaultClient;
  let echo: EchoMcpServer;
  const registry = new ProviderRegistry();
  let listed: Map<string, ListedCapability>;
  let manifest: GrantStoreManifest;
  let service: CallService;

  /** A raw grant-store call, as an operator tool would make it. */
  function store<K extends keyof grants.GrantStoreClient>(
    method: K,
    request: unknown,
    metadata?: Metadata,
  ): Promise<unknown> {
    type Unary = Parameters<typeof callUnary<unknown, unknown>>[0];
    const fn = (grantClient[method] as unknown as Unary).bind(grantClient);
    return callUnary(fn, request, { deadlineMs: 5000, ...(metadata && { metadata }) });
  }

  async function createGrant(principalId: string, capabilities: string[]): Promise<string> {
    // fromPartial fills every field the current proto has, so the test survives added fields.
    const res = (await store(
      'createGrant',
      grants.CreateGrantRequest.fromPartial({ principalId, capabilities }),
    )) as grants.CreateGrantResponse;
    return res.grant?.id ?? '';
  }

  async function decideApproval(approvalId: string, approve: boolean): Promise<void> {
    const metadata = new Metadata();
    metadata.set(OPERATOR_METADATA_KEY, 'operator-1');
    await store(
      'decideApproval',
      grants.DecideApprovalRequest.fromPartial({
        approvalId,
        verdict: approve
          ? grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE
          : grants.ApprovalVerdict.APPROVAL_VERDICT_DENY,
      }),
      metadata,
    );
  }

  function capabilityFor(tool: string, extra: Partial<Capability> = {}): Capability {
    return {
      id: `echo/${tool}`,
      provider: 'echo',
      tool,
      effects: ['read'],
      risk: 'low',
      approvalRequired: false,
      requiredScopes: [],
      resourceArguments: [],
      definitionDigest: listed.get(`echo/${tool}`)?.digest ?? '',
      ...extra,
    };
  }

  const digestOf = (id: string) => listed.get(id)?.digest;

  beforeAll(async () => {
    database = await openDatabase<GrantStoreDb & VaultDb>({ kind: 'pglite' });
    closers.push(() => database.close());
    const grantStore = await startGrantStore({
      db: database as unknown as Database<GrantStoreDb>,
      bus,
      port: 0,
    });
    closers.push(() => grantStore.close());
    const handleVault = await startHandleVault({
      db: database as unknown as Database<VaultDb>,
      audit: { record: () => undefined, available: () => true },
      keys: VaultKeyring.of({ k1: randomBytes(32) }, 'k1'),
      port: 0,
      limits: { maxHandleBytes: 4096 },
      sweepIntervalMs: 0,
    });
    closers.push(() => handleVault.close());
    const pdp = await startPolicyDecision({
      grantStoreUrl: grantStore.url,
      bus,
      grpcPort: 0,
      httpPort: null,
      maxStalenessMs: 5000,
      fetchDeadlineMs: 1000,
      protocolVersions: DEFAULT_PROTOCOL_VERSIONS,
      authzenToken: null,
    });
    closers.push(() => pdp.close());
    grantClient = createGrpcClient(grants.GrantStoreClient, grantStore.url);
    pdpClient = createGrpcClient(policy.PolicyDecisionClient, pdp.grpcUrl);
    vaultClient = createGrpcClient(vault.HandleVaultClient, handleVault.url);
    closers.push(() => {
      grantClient.close();
      pdpClient.close();
      vaultClient.close();
      return Promise.resolve();
    });

    echo = await startEchoMcpServer();
    closers.push(() => echo.close());
    const listing = await registry.register({
      id: 'echo',
      transport: { kind: 'http', url: echo.url },
    });
    closers.push(() => registry.closeAll());
    listed = new Map(listing.capabilities.map((c) => [c.capabilityId, c]));

    manifest = new GrantStoreManifest(grantClient, {
      bus,
      settings: { 'echo/*': { sensitivity: 'internal' }, 'echo/echo': { inlinePreview: true } },
    });
    closers.push(() => manifest.close());
    await manifest.pin([
      capabilityFor('echo'),
      capabilityFor('big', { risk: 'high', approvalRequired: true }),
    ]);
    await createGrant('alice', ['echo/*']);

    service = new CallService({
      decision: grpcDecisionPort(pdpClient, { deadlineMs: 5000 }),
      vault: grpcVaultPort(vaultClient, { deadlineMs: 5000 }),
      upstream: registryUpstreamPort(registry),
      canonicalizer: canonicalizerPort(registryConfigOf(registry)),
      manifest,
      approvals: grpcApprovalPort(grantClient, { deadlineMs: 5000 }),
      audit,
      validator: new JsonSchemaArgumentValidator(pinnedSchemaSource((id) => listed.get(id))),
    });
  }, 60_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await bus.close();
  });

  const callAs = (principal: Principal, capabilityId: string, args: unknown, approvalId?: string) =>
    service.callTool({
      principal,
      session: session(principal.id),
      capabilityId,
      args,
      ...(digestOf(capabilityId) === undefined ? {} : { observedDigest: digestOf(capabilityId) }),
      ...(approvalId === undefined ? {} : { approvalId }),
    });

  describe('the call path through every adapter', () => {
    let handleId: string;

    it('allows a granted call, stores the output in the vault and previews it where allowed', async () => {
      const out = succeeded(await callAs(alice, 'echo/echo', { text: 'hello' }));
      expect(out.preview).toEqual({ text: 'hello', truncated: false });
      handleId = out.handleId;
      expect(auditEntries.at(-1)).toMatchObject({
        check: 'invocation',
        outcome: 'allow',
        handleIds: [handleId],
      });
      const peek = await service.peek({ principal: alice, session: session('alice'), handleId });
      expect(peek).toMatchObject({
        kind: 'preview',
        text: 'hello',
        handle: {
          ownerPrincipalId: 'alice',
          labels: { sensitivity: 'internal', capability: 'echo/echo' },
        },
      });
    });

    it("refuses another principal's peek of that handle (I4)", async () => {
      const out = await service.peek({ principal: bob, session: session('bob'), handleId });
      expect(refused(out).reason).toBe('HANDLE_NOT_OWNED');
    });

    it('denies a principal without a grant (NO_MATCHING_GRANT)', async () => {
      expect(refused(await callAs(bob, 'echo/echo', { text: 'hello' })).reason).toBe(
        'NO_MATCHING_GRANT',
      );
    });

    it('refuses arguments the pinned schema rejects before deciding', async () => {
      const out = refused(await callAs(alice, 'echo/echo', { text: 42 }));
      expect(out).toMatchObject({ reason: 'INPUT_INVALID' });
      expect(out.message).toContain('arguments.text');
      expect(auditEntries.at(-1)).toMatchObject({ check: 'input_schema', outcome: 'deny' });
    });

    it('denies a tool whose listed definition differs from the pin (TOOL_DEFINITION_CHANGED)', async () => {
      const out = await service.callTool({
        principal: alice,
        session: session('alice'),
        capabilityId: 'echo/echo',
        args: { text: 'x' },
        observedDigest: `sha256:${'0'.repeat(64)}`,
      });
      expect(refused(out).reason).toBe('TOOL_DEFINITION_CHANGED');
    });

    it('denies a listed tool the manifest does not hold (CAPABILITY_UNKNOWN)', async () => {
      expect(refused(await callAs(alice, 'echo/slow', { ms: 1 })).reason).toBe(
        'CAPABILITY_UNKNOWN',
      );
    });

    it('pipes an owned handle into an allowed target, and refuses a handle of someone else', async () => {
      const piped = succeeded(
        await service.pipe({
          principal: alice,
          session: session('alice'),
          sourceHandleId: handleId,
          targetCapabilityId: 'echo/echo',
          argumentName: 'text',
          args: {},
          observedDigest: digestOf('echo/echo'),
        }),
      );
      const peek = await service.peek({
        principal: alice,
        session: session('alice'),
        handleId: piped.handleId,
      });
      expect(peek).toMatchObject({
        kind: 'preview',
        text: 'hello',
        handle: { labels: { pipedFrom: handleId } },
      });

      await createGrant('bob', ['echo/*']);
      const stolen = await service.pipe({
        principal: bob,
        session: session('bob'),
        sourceHandleId: handleId,
        targetCapabilityId: 'echo/echo',
        argumentName: 'text',
        args: {},
        observedDigest: digestOf('echo/echo'),
      });
      expect(refused(stolen).reason).toBe('HANDLE_NOT_OWNED');
    });
  });

  describe('approvals (I2): requested by the edge, decided by an operator, used once', () => {
    it('walks request → operator approval → one allowed call → replay denied', async () => {
      const first = refused(await callAs(alice, 'echo/big', { bytes: 5 }));
      expect(first.reason).toBe('APPROVAL_REQUIRED');
      const approvalId = first.approvalRequestId ?? '';
      expect(approvalId).not.toBe('');
      const stored = approvalFromProto(
        ((await store('getApproval', { approvalId })) as grants.GetApprovalResponse).approval!,
      );
      expect(stored).toMatchObject({
        state: 'pending',
        principalId: 'alice',
        capabilityId: 'echo/big',
        bindingDigest: approvalBindingDigest({
          principalId: 'alice',
          capabilityId: 'echo/big',
          canonicalResources: [],
          argumentsDigest: argumentsDigest({ bytes: 5 }),
        }),
      });
      expect(first.approvalExpiresAt).toBe(stored.expiresAt);

      // Pending is not approved.
      expect(refused(await callAs(alice, 'echo/big', { bytes: 5 }, approvalId)).reason).toBe(
        'APPROVAL_REQUIRED',
      );
      await decideApproval(approvalId, true);
      // Approved for other arguments is no approval for these.
      expect(refused(await callAs(alice, 'echo/big', { bytes: 6 }, approvalId)).reason).toBe(
        'APPROVAL_MISMATCH',
      );
      succeeded(await callAs(alice, 'echo/big', { bytes: 5 }, approvalId));
      expect(auditEntries.at(-1)).toMatchObject({ check: 'invocation', approvalId });
      expect(refused(await callAs(alice, 'echo/big', { bytes: 5 }, approvalId)).reason).toBe(
        'APPROVAL_CONSUMED',
      );
    });

    it('never treats `confirm: true` from the agent as an approval', async () => {
      const plain = refused(await callAs(alice, 'echo/big', { bytes: 8 }));
      const approvalId = plain.approvalRequestId ?? '';
      await decideApproval(approvalId, true);
      // The agent adding `confirm: true` is no approval: `confirm` is not an argument of the
      // pinned schema, so the call is refused as input before any decision, and nothing is filed...
      const confirmed = refused(await callAs(alice, 'echo/big', { bytes: 8, confirm: true }));
      expect(confirmed.reason).toBe('INPUT_INVALID');
      expect(confirmed.approvalRequestId).toBeUndefined();
      // ...not even with the approval of the plain call presented beside it.
      expect(
        refused(await callAs(alice, 'echo/big', { bytes: 8, confirm: true }, approvalId)).reason,
      ).toBe('INPUT_INVALID');
      // Neighbour: the approved plain call runs, once.
      succeeded(await callAs(alice, 'echo/big', { bytes: 8 }, approvalId));
    });
  });

  describe('grpcApprovalPort', () => {
    const port = () => grpcApprovalPort(grantClient);
    const binding = approvalBindingDigest({
      principalId: 'alice',
      capabilityId: 'echo/big',
      canonicalResources: [],
      argumentsDigest: argumentsDigest({ bytes: 9 }),
    });

    it('consumes an approved approval once; pending, mismatched or replayed ones are typed refusals', async () => {
      const approval = await port().request({
        principalId: 'alice',
        capabilityId: 'echo/big',
        bindingDigest: binding,
        summary: 'test',
        ttlMs: 60_000,
      });
      expect(approval).toMatchObject({ state: 'pending', bindingDigest: binding });
      const use = (bindingDigest: string) =>
        port().consume({
          approvalId: approval.id,
          principalId: 'alice',
          decisionId: 'dec-1',
          bindingDigest,
        });
      expect((await hcpErrorOf(use(binding))).reason).toBe('APPROVAL_REQUIRED');
      await decideApproval(approval.id, true);
      expect((await hcpErrorOf(use(`sha256:${'1'.repeat(64)}`))).reason).toBe('APPROVAL_MISMATCH');
      await expect(use(binding)).resolves.toBeUndefined();
      expect((await hcpErrorOf(use(binding))).reason).toBe('APPROVAL_CONSUMED');
    });

    it('refuses a malformed request with INPUT_INVALID', async () => {
      const err = await hcpErrorOf(
        port().request({
          principalId: '',
          capabilityId: 'echo/big',
          bindingDigest: binding,
          summary: '',
        }),
      );
      expect(err.reason).toBe('INPUT_INVALID');
    });
  });

  describe('grpcVaultPort', () => {
    const port = () => grpcVaultPort(vaultClient);
    const put = (payload: Uint8Array) =>
      port().put({
        ownerPrincipalId: 'alice',
        producingCapability: 'echo/echo',
        labels: { a: 'b' },
        payload,
      });

    it('describes an owned handle, and answers undefined for unknown or foreign ones', async () => {
      const h = await put(Buffer.from('data'));
      expect(await port().describe({ principalId: 'alice', handleId: h.id })).toMatchObject({
        id: h.id,
        ownerPrincipalId: 'alice',
        sizeBytes: 4,
        labels: { a: 'b' },
      });
      expect(await port().describe({ principalId: 'bob', handleId: h.id })).toBeUndefined();
      const unknown = `hdl_${randomBytes(16).toString('base64url').slice(0, 22)}`;
      expect(await port().describe({ principalId: 'alice', handleId: unknown })).toBeUndefined();
    });

    it('refuses a malformed handle id as INPUT_INVALID rather than hiding it', async () => {
      const err = await hcpErrorOf(port().describe({ principalId: 'alice', handleId: 'hdl-bad' }));
      expect(err.reason).toBe('INPUT_INVALID');
    });

    it('resolves the payload for a pipe, owner only', async () => {
      const h = await put(Buffer.from('payload'));
      const resolved = await port().resolveForPipe({
        principalId: 'alice',
        handleId: h.id,
        decisionId: 'dec-x',
      });
      expect(Buffer.from(resolved.payload).toString()).toBe('payload');
      expect(
        (
          await hcpErrorOf(
            port().resolveForPipe({ principalId: 'bob', handleId: h.id, decisionId: 'dec-x' }),
          )
        ).reason,
      ).toBe('HANDLE_NOT_OWNED');
    });

    it('refuses a payload over the vault limit as PAYLOAD_TOO_LARGE', async () => {
      expect((await hcpErrorOf(put(Buffer.alloc(5000)))).reason).toBe('PAYLOAD_TOO_LARGE');
      await expect(put(Buffer.alloc(4000))).resolves.toMatchObject({ sizeBytes: 4000 });
    });
  });

  describe('grpcDecisionPort', () => {
    it('throws a plain error (not HcpError) when the PDP is unreachable, so the call path fails closed', async () => {
      const dead = createGrpcClient(policy.PolicyDecisionClient, '127.0.0.1:1');
      try {
        const port = grpcDecisionPort(dead, { deadlineMs: 500 });
        const facts = {
          principal: alice,
          session: session('alice'),
          call: { capabilityId: 'echo/echo', argumentsDigest: '' },
        };
        const err: unknown = await port.decide(facts).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
        expect(err).not.toBeInstanceOf(HcpError);
        const unreachable = new CallService({ ...portsOf(service), decision: port });
        expect(
          refused(
            await unreachable.callTool({
              principal: alice,
              session: session('alice'),
              capabilityId: 'echo/echo',
              args: { text: 'x' },
            }),
          ).reason,
        ).toBe('POLICY_UNAVAILABLE');
      } finally {
        dead.close();
      }
    });

    it('decides a pipe whose source metadata is absent as HANDLE_NOT_OWNED', async () => {
      const d = await grpcDecisionPort(pdpClient).decidePipe({
        sourceHandleId: 'hdl-nope',
        target: {
          principal: alice,
          session: session('alice'),
          call: {
            capabilityId: 'echo/echo',
            argumentsDigest: argumentsDigest({}),
            observedDefinitionDigest: digestOf('echo/echo') ?? '',
          },
          endpointFamily: 'handle/pipe',
        },
      });
      expect(d).toMatchObject({ outcome: 'deny', reason: 'HANDLE_NOT_OWNED' });
    });
  });

  describe('GrantStoreManifest', () => {
    it('joins manifest entries with the edge settings (provider wildcard, then the exact id)', async () => {
      const all = await manifest.all();
      expect(all.map((c) => c.capability.id)).toEqual(['echo/big', 'echo/echo']);
      expect(await manifest.capability('echo/echo')).toMatchObject({
        inlinePreview: true,
        sensitivity: 'internal',
      });
      expect(await manifest.capability('echo/big')).toEqual({
        capability: expect.objectContaining({ id: 'echo/big', approvalRequired: true }) as unknown,
        inlinePreview: false,
        sensitivity: 'internal',
      });
      expect(await manifest.capability('echo/slow')).toBeUndefined();
    });

    it('serves its cache within the TTL without a bus, and reads again after it', async () => {
      let now = 0;
      const quiet = new GrantStoreManifest(grantClient, { ttlMs: 1000, clock: () => now });
      expect(await quiet.capability('other/tool')).toBeUndefined();
      await store('putCapability', { capability: capabilityToWire('other/tool') });
      expect(await quiet.capability('other/tool')).toBeUndefined();
      now = 1000;
      expect(await quiet.capability('other/tool')).toBeDefined();
    });

    it('drops its cache on a manifest change announced on the bus', async () => {
      const listening = new GrantStoreManifest(grantClient, { bus, ttlMs: 60_000 });
      try {
        expect(await listening.capability('another/tool')).toBeUndefined();
        await store('putCapability', { capability: capabilityToWire('another/tool') });
        await eventually(
          async () => (await listening.capability('another/tool')) !== undefined,
          'manifest invalidated',
        );
      } finally {
        await listening.close();
      }
    });

    it('refuses to pin an entry without a definition digest', async () => {
      const err = await hcpErrorOf(manifest.pin([capabilityFor('slow', { definitionDigest: '' })]));
      expect(err.reason).toBe('INPUT_INVALID');
      expect(await manifest.capability('echo/slow')).toBeUndefined();
    });

    it('refuses an invalid preview bound at construction', () => {
      expect(
        () => new GrantStoreManifest(grantClient, { settings: { 'x/y': { previewMaxBytes: 0 } } }),
      ).toThrow(HcpError);
    });
  });

  describe('GrantStoreGrants', () => {
    it('reads live grants, and drops a principal on a change announced on the bus', async () => {
      const grantsOf = new GrantStoreGrants(grantClient, { bus, ttlMs: 60_000 });
      try {
        expect(await grantsOf.grantsOf('carol')).toEqual([]);
        const id = await createGrant('carol', ['echo/echo']);
        await eventually(async () => (await grantsOf.grantsOf('carol')).length === 1, 'grant seen');
        await store('revokeGrant', { grantId: id, reason: 'test' });
        await eventually(
          async () => (await grantsOf.grantsOf('carol')).length === 0,
          'revocation seen',
        );
      } finally {
        await grantsOf.close();
      }
    });

    it('without a bus, serves the cache until the TTL passes', async () => {
      let now = 0;
      const grantsOf = new GrantStoreGrants(grantClient, { ttlMs: 1000, clock: () => now });
      expect(await grantsOf.grantsOf('dave')).toEqual([]);
      await createGrant('dave', ['echo/*']);
      expect(await grantsOf.grantsOf('dave')).toEqual([]);
      now = 1000;
      expect(await grantsOf.grantsOf('dave')).toMatchObject([
        { principalId: 'dave', capabilities: ['echo/*'] },
      ]);
    });
  });
});

/** A minimal manifest entry as the wire carries it. */
function capabilityToWire(id: string): core.Capability {
  const [provider = '', tool = ''] = id.split('/');
  return core.Capability.fromPartial({
    id,
    provider,
    tool,
    effects: [core.Effect.EFFECT_READ],
    risk: core.RiskClass.RISK_CLASS_LOW,
  });
}

/** The ports a CallService was built with (to swap one in a test). */
function portsOf(service: CallService): ConstructorParameters<typeof CallService>[0] {
  return (service as unknown as { ports: ConstructorParameters<typeof CallService>[0] }).ports;
}
