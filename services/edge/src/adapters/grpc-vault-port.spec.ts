import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HcpError, type AuditEntry, type Principal, type SessionFacts } from '@hcp/core';
import { createGrpcClient } from '@hcp/platform';
import { vault } from '@hcp/proto';
import { CallService } from '../call/call.service';
import type { CallPorts, VaultPort } from '../call/ports';
import { grpcVaultPort } from './grpc-vault-port';

/*
 * A vault that cannot be reached, through the real gRPC adapter: whatever the transport says
 * (connection refused, a deadline passed, UNAVAILABLE from a proxy in front of the vault), the call
 * path names it VAULT_UNAVAILABLE, typed and audited, never as a size (PAYLOAD_TOO_LARGE) or an
 * ownership (HANDLE_NOT_OWNED) refusal.
 */

const alice: Principal = { id: 'alice', kind: 'agent' };
const session: SessionFacts = {
  state: 'active',
  id: 'ses-1',
  initialized: true,
  ownerPrincipalId: 'alice',
  negotiatedVersion: '2025-11-25',
};
const HANDLE = `hdl_${'a'.repeat(22)}`;

/** A HandleVault server whose every RPC does `behave` (never answer, or answer a bare status). */
async function startVault(
  behave: 'hang' | 'unavailable',
): Promise<{ url: string; stop: () => void }> {
  const server = new Server();
  const handler = (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    if (behave === 'unavailable') callback({ code: status.UNAVAILABLE, details: 'vault draining' });
  };
  const impl: UntypedServiceImplementation = {};
  for (const name of Object.keys(vault.HandleVaultService)) impl[name] = handler;
  server.addService(vault.HandleVaultService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err === null ? resolve(p) : reject(err),
    ),
  );
  return { url: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** A call path whose only real dependency is the vault port; everything before it allows. */
function serviceWith(vaultPort: VaultPort) {
  const audit: AuditEntry[] = [];
  const ports: CallPorts = {
    vault: vaultPort,
    decision: {
      decide: () => Promise.resolve(allow),
      decidePipe: () => Promise.resolve(allow),
    },
    upstream: {
      callTool: () =>
        Promise.resolve({ content: [{ type: 'text', text: 'out' }], isError: false, sizeBytes: 3 }),
    },
    canonicalizer: {
      canonicalize: (capability, args) =>
        Promise.resolve(
          capability.resourceArguments
            .filter((a) => a.name in args)
            .map((a) => ({
              argument: a.name,
              index: 0,
              facts: {
                status: 'resolved' as const,
                resource: {
                  kind: a.canonicalizer,
                  raw: String(args[a.name]),
                  canonical: String(args[a.name]),
                },
              },
            })),
        ),
      maxRawLength: () => 4096,
    },
    manifest: {
      capability: (id) =>
        Promise.resolve(
          id === 'fs/read_file'
            ? {
                capability: {
                  id,
                  provider: 'fs',
                  tool: 'read_file',
                  effects: ['read'],
                  risk: 'low',
                  approvalRequired: false,
                  requiredScopes: [],
                  resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
                },
                inlinePreview: false,
              }
            : undefined,
        ),
    },
    approvals: {
      request: () => Promise.reject(new Error('not used')),
      consume: () => Promise.resolve(),
    },
    audit: { available: () => true, record: (e) => void audit.push(e) },
  };
  return { service: new CallService(ports), audit };
}

const allow = {
  id: 'dec-allow',
  outcome: 'allow' as const,
  reason: 'ALLOWED' as const,
  check: 'all',
  explanation: 'allow',
  decidedAt: 1,
  ablations: [],
};

describe.each<
  ['refused connection' | 'deadline' | 'UNAVAILABLE status', 'dead' | 'hang' | 'unavailable']
>([
  ['refused connection', 'dead'],
  ['deadline', 'hang'],
  ['UNAVAILABLE status', 'unavailable'],
])('grpcVaultPort when the vault is unreachable (%s)', (_label, mode) => {
  let url = '127.0.0.1:1';
  let stop = (): void => undefined;
  let client: vault.HandleVaultClient;

  beforeAll(async () => {
    if (mode !== 'dead') ({ url, stop } = await startVault(mode));
    client = createGrpcClient(vault.HandleVaultClient, url);
  });
  afterAll(() => {
    client.close();
    stop();
  });
  const port = () => grpcVaultPort(client, { deadlineMs: 300 });

  it('throws a transport error (no reason code) from every RPC; describe never answers "not yours"', async () => {
    const thrown = await Promise.all([
      port()
        .put({
          ownerPrincipalId: 'alice',
          producingCapability: 'x/y',
          labels: {},
          payload: Buffer.from('x'),
        })
        .catch((e: unknown) => e),
      port()
        .peek({ principalId: 'alice', handleId: HANDLE, maxBytes: 10 })
        .catch((e: unknown) => e),
      port()
        .describe({ principalId: 'alice', handleId: HANDLE })
        .catch((e: unknown) => e),
      port()
        .resolveForPipe({ principalId: 'alice', handleId: HANDLE, decisionId: 'dec-1' })
        .catch((e: unknown) => e),
    ]);
    for (const err of thrown) {
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(HcpError);
      expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(
        (err as { code?: number }).code,
      );
    }
  });

  it('a call whose output cannot be stored is VAULT_UNAVAILABLE (not PAYLOAD_TOO_LARGE), audited', async () => {
    const { service, audit } = serviceWith(port());
    const out = await service.callTool({
      principal: alice,
      session,
      capabilityId: 'fs/read_file',
      args: { path: '/a' },
    });
    expect(out).toMatchObject({
      kind: 'refused',
      reason: 'VAULT_UNAVAILABLE',
      decisionId: allow.id,
    });
    expect(audit.at(-1)).toMatchObject({
      decisionId: allow.id,
      outcome: 'deny',
      reason: 'VAULT_UNAVAILABLE',
    });
  });

  it('a peek is VAULT_UNAVAILABLE (not HANDLE_NOT_OWNED), audited under the id the agent gets', async () => {
    const { service, audit } = serviceWith(port());
    const out = await service.peek({ principal: alice, session, handleId: HANDLE });
    expect(out).toMatchObject({ kind: 'refused', reason: 'VAULT_UNAVAILABLE' });
    expect(audit).toEqual([
      expect.objectContaining({
        decisionId: (out as { decisionId: string }).decisionId,
        reason: 'VAULT_UNAVAILABLE',
        check: 'vault.peek',
      }),
    ]);
  });

  it.each([
    ['a plain argument', 'content'],
    ['the resource argument', 'path'],
  ])(
    'a pipe into %s is VAULT_UNAVAILABLE (not HANDLE_NOT_OWNED), audited',
    async (_l, argumentName) => {
      const { service, audit } = serviceWith(port());
      const out = await service.pipe({
        principal: alice,
        session,
        sourceHandleId: HANDLE,
        targetCapabilityId: 'fs/read_file',
        argumentName,
        args: argumentName === 'path' ? {} : { path: '/a' },
      });
      expect(out).toMatchObject({ kind: 'refused', reason: 'VAULT_UNAVAILABLE' });
      expect(audit).toEqual([
        expect.objectContaining({
          decisionId: (out as { decisionId: string }).decisionId,
          reason: 'VAULT_UNAVAILABLE',
          check: 'vault.describe',
          handleIds: [HANDLE],
        }),
      ]);
    },
  );
});
