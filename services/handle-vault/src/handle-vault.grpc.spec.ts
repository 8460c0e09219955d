import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { sql } from 'kysely';
import type { AuditEntry } from '@hcp/core';
import {
  AUDIT_STREAM,
  callUnary,
  createAuditPublisher,
  createGrpcClient,
  InProcessBus,
  reasonOfGrpcError,
  type AuditPublisher,
  type Database,
  type UnaryMethod,
} from '@hcp/platform';
import { eventually } from '@hcp/platform/testing';
import { audit as auditPb, auditEntryFromProto, vault } from '@hcp/proto';
import type { VaultDb } from './database';
import {
  OPERATOR_METADATA_KEY,
  startHandleVault,
  VaultKeyring,
  type RunningHandleVault,
} from './index';
import { freshDatabase, keyMaterial, testClock, T0 } from './testing/harness';

// Over the wire: the real Nest microservice from startGrpcService, the generated grpc-js
// client, and the real audit publisher on an in-process bus. Every RPC with valid and
// malformed input; every failure must be a typed status, never INTERNAL or UNKNOWN.

type Call = UnaryMethod<unknown, unknown>;
type Method = 'put' | 'peek' | 'describeHandle' | 'resolveForPipe' | 'delete' | 'expireNow';

// Requests go through each message's fromPartial, as a real client leaves unset fields at their
// proto defaults (the ts-proto encoder needs every scalar present).
const REQUESTS: Record<Method, { fromPartial(o: never): unknown }> = {
  put: vault.PutRequest,
  peek: vault.PeekRequest,
  describeHandle: vault.DescribeHandleRequest,
  resolveForPipe: vault.ResolveForPipeRequest,
  delete: vault.DeleteRequest,
  expireNow: vault.ExpireNowRequest,
};

const PAYLOAD = Buffer.from('rows: 3\npassword=hunter2\nend');

describe('handle-vault over gRPC', () => {
  const clock = testClock();
  const bus = new InProcessBus();
  const audited: AuditEntry[] = [];
  let publisher: AuditPublisher;
  let database: Database<VaultDb>;
  let running: RunningHandleVault;
  let client: vault.HandleVaultClient;

  function call(method: Method, request: object, metadata?: Metadata): Promise<unknown> {
    const fn = (client[method] as unknown as Call).bind(client);
    return callUnary(fn, REQUESTS[method].fromPartial(request as never), {
      deadlineMs: 5000,
      ...(metadata && { metadata }),
    });
  }

  /** The typed failure of a call: never INTERNAL/UNKNOWN, always with an ErrorDetail. */
  async function failure(
    p: Promise<unknown>,
  ): Promise<{ code: string; reason?: string; details: string }> {
    const err = (await p.then(
      () => undefined,
      (e: unknown) => e,
    )) as ServiceError | undefined;
    if (err === undefined) throw new Error('expected the call to fail');
    expect([status.INTERNAL, status.UNKNOWN]).not.toContain(err.code);
    const reason = reasonOfGrpcError(err)?.reason;
    return {
      code: status[err.code],
      ...(reason !== undefined && { reason }),
      details: err.details,
    };
  }

  const operator = () => {
    const md = new Metadata();
    md.set(OPERATOR_METADATA_KEY, 'operator-1');
    return md;
  };

  const putRequest = (over: Partial<vault.PutRequest> = {}): vault.PutRequest => ({
    ownerPrincipalId: 'agent-1',
    producingCapability: 'fs/read_file',
    labels: { provider: 'fs', sensitivity: 'internal' },
    ttl: { seconds: 60, nanos: 0 },
    payload: PAYLOAD,
    ...over,
  });
  const put = async (over: Partial<vault.PutRequest> = {}) =>
    ((await call('put', putRequest(over))) as vault.PutResponse).handle!;

  /** Audit entries published so far for this handle id, once the publisher has delivered them. */
  async function auditFor(handleId: string, count: number): Promise<AuditEntry[]> {
    await publisher.flush(5000);
    const mine = () => audited.filter((e) => e.handleIds.includes(handleId));
    await eventually(() => mine().length >= count, `${count} audit entries for ${handleId}`);
    return mine();
  }

  beforeAll(async () => {
    publisher = await createAuditPublisher(bus, { source: 'handle-vault' });
    await bus.consumeDurable({ stream: AUDIT_STREAM, durable: 'vault-spec' }, (m) => {
      audited.push(auditEntryFromProto(auditPb.AuditEvent.decode(m.data).entry!));
      return Promise.resolve();
    });
    database = await freshDatabase();
    const keys = keyMaterial('k1');
    running = await startHandleVault({
      db: database,
      audit: publisher,
      keys: VaultKeyring.of(keys, 'k1'),
      port: 0,
      clock,
      limits: {
        maxHandleBytes: 1024,
        maxPrincipalBytes: 4096,
        defaultPeekBytes: 256,
        maxPeekBytes: 512,
      },
      sweepIntervalMs: 0,
    });
    client = createGrpcClient(vault.HandleVaultClient, running.url);
  });
  afterAll(async () => {
    client?.close();
    await running?.close();
    await database?.close();
    await publisher?.close(1000);
    await bus.close();
  });
  beforeEach(async () => {
    clock.set(T0);
    await sql`truncate handles`.execute(database.db);
  });

  it('Put / Peek / ResolveForPipe / Delete for the owner', async () => {
    const handle = await put();
    expect(handle).toEqual({
      id: expect.stringMatching(/^hdl_[A-Za-z0-9_-]{22}$/) as unknown,
      ownerPrincipalId: 'agent-1',
      producingCapability: 'fs/read_file',
      labels: { provider: 'fs', sensitivity: 'internal' },
      createdAt: { seconds: T0 / 1000, nanos: 0 },
      expiresAt: { seconds: T0 / 1000 + 60, nanos: 0 },
      sizeBytes: PAYLOAD.length,
    });
    await expect(
      call('peek', { principalId: 'agent-1', handleId: handle.id, maxBytes: 0 }),
    ).resolves.toEqual({
      handle,
      preview: 'rows: 3\npassword=[REDACTED]\nend',
      truncated: false,
      redactionCount: 1,
    });
    await expect(
      call('peek', { principalId: 'agent-1', handleId: handle.id, maxBytes: 4 }),
    ).resolves.toMatchObject({ preview: 'rows', truncated: true, redactionCount: 0 });
    const resolved = (await call('resolveForPipe', {
      principalId: 'agent-1',
      handleId: handle.id,
      decisionId: 'dec_pipe_1',
    })) as vault.ResolveForPipeResponse;
    expect(Buffer.from(resolved.payload).equals(PAYLOAD)).toBe(true);
    expect(resolved.handle).toEqual(handle);
    await expect(call('delete', { principalId: 'agent-1', handleId: handle.id })).resolves.toEqual(
      {},
    );
    expect(
      await failure(call('peek', { principalId: 'agent-1', handleId: handle.id, maxBytes: 0 })),
    ).toMatchObject({ code: 'NOT_FOUND', reason: 'HANDLE_NOT_OWNED' });

    const entries = await auditFor(handle.id, 5);
    expect(entries.map((e) => [e.endpointFamily, e.check, e.outcome, e.reason])).toEqual([
      ['handle/peek', 'vault.peek', 'allow', 'ALLOWED'],
      ['handle/peek', 'vault.peek', 'allow', 'ALLOWED'],
      ['handle/pipe', 'vault.resolve_for_pipe', 'allow', 'ALLOWED'],
      ['handle/peek', 'vault.delete', 'allow', 'ALLOWED'],
      ['handle/peek', 'vault.peek', 'deny', 'HANDLE_NOT_OWNED'],
    ]);
    expect(entries[2]?.decisionId).toBe('dec_pipe_1');
  });

  it('another principal gets NOT_FOUND / HANDLE_NOT_OWNED, like a nonexistent id, and is audited', async () => {
    const handle = await put();
    const foreign = [
      await failure(call('peek', { principalId: 'agent-2', handleId: handle.id, maxBytes: 0 })),
      await failure(
        call('resolveForPipe', {
          principalId: 'agent-2',
          handleId: handle.id,
          decisionId: 'dec_x',
        }),
      ),
      await failure(call('delete', { principalId: 'agent-2', handleId: handle.id })),
    ];
    for (const f of foreign)
      expect(f).toMatchObject({ code: 'NOT_FOUND', reason: 'HANDLE_NOT_OWNED' });

    const entries = await auditFor(handle.id, 3);
    expect(
      entries.map((e) => [e.principalId, e.endpointFamily, e.outcome, e.reason, e.invariant]),
    ).toEqual([
      ['agent-2', 'handle/peek', 'deny', 'HANDLE_NOT_OWNED', 'I4'],
      ['agent-2', 'handle/pipe', 'deny', 'HANDLE_NOT_OWNED', 'I4'],
      ['agent-2', 'handle/peek', 'deny', 'HANDLE_NOT_OWNED', 'I4'],
    ]);

    // The same id once the row is gone: byte-for-byte the same answer.
    await call('delete', { principalId: 'agent-1', handleId: handle.id });
    const missing = [
      await failure(call('peek', { principalId: 'agent-2', handleId: handle.id, maxBytes: 0 })),
      await failure(
        call('resolveForPipe', {
          principalId: 'agent-2',
          handleId: handle.id,
          decisionId: 'dec_x',
        }),
      ),
      await failure(call('delete', { principalId: 'agent-2', handleId: handle.id })),
    ];
    expect(missing).toEqual(foreign);
  });

  it('DescribeHandle: metadata for the owner, expired or not; unknown and foreign read alike', async () => {
    const handle = await put();
    const describe = (principalId: string, handleId = handle.id) =>
      call('describeHandle', { principalId, handleId }) as Promise<vault.DescribeHandleResponse>;
    expect((await describe('agent-1')).handle).toEqual(handle);
    const foreign = await failure(describe('agent-2'));
    expect(foreign).toMatchObject({ code: 'NOT_FOUND', reason: 'HANDLE_NOT_OWNED' });
    const unknown = await failure(describe('agent-2', 'hdl_AAAAAAAAAAAAAAAAAAAAAA'));
    expect({ ...unknown, details: '' }).toEqual({ ...foreign, details: '' });
    expect(await failure(describe('agent-1', '../etc/passwd'))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      reason: 'INPUT_INVALID',
    });
    // Expiry is the decision point's to judge (HANDLE_EXPIRED there, recorded with the decision).
    clock.advance(10 * 24 * 3600 * 1000);
    expect((await describe('agent-1')).handle?.id).toBe(handle.id);
  });

  it('an expired handle is FAILED_PRECONDITION / HANDLE_EXPIRED; ExpireNow needs an operator', async () => {
    const handle = await put();
    expect(await failure(call('expireNow', { handleId: handle.id, reason: 'test' }))).toMatchObject(
      { code: 'UNAUTHENTICATED', reason: 'PRINCIPAL_UNAUTHENTICATED' },
    );
    clock.advance(1500);
    const expired = (await call(
      'expireNow',
      { handleId: handle.id, reason: 'rotation drill' },
      operator(),
    )) as vault.ExpireNowResponse;
    expect(expired.handle).toEqual({
      ...handle,
      expiresAt: { seconds: T0 / 1000 + 1, nanos: 500_000_000 },
    });
    for (const p of [
      call('peek', { principalId: 'agent-1', handleId: handle.id, maxBytes: 0 }),
      call('resolveForPipe', { principalId: 'agent-1', handleId: handle.id, decisionId: 'dec_1' }),
    ])
      expect(await failure(p)).toMatchObject({
        code: 'FAILED_PRECONDITION',
        reason: 'HANDLE_EXPIRED',
      });
    // The TTL runs out the same way.
    const short = await put({ ttl: { seconds: 1, nanos: 0 } });
    clock.advance(1000);
    expect(
      await failure(call('peek', { principalId: 'agent-1', handleId: short.id, maxBytes: 0 })),
    ).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'HANDLE_EXPIRED' });
  });

  it('oversized payloads are RESOURCE_EXHAUSTED / PAYLOAD_TOO_LARGE and nothing is stored', async () => {
    expect(await failure(call('put', putRequest({ payload: Buffer.alloc(1025) })))).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      reason: 'PAYLOAD_TOO_LARGE',
      details: 'payload is 1025 bytes; the per-handle limit is 1024',
    });
    for (let i = 0; i < 4; i++) await put({ payload: Buffer.alloc(1024) });
    expect(await failure(call('put', putRequest({ payload: Buffer.alloc(1) })))).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      reason: 'PAYLOAD_TOO_LARGE',
    });
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from handles`.execute(
      database.db,
    );
    expect(rows[0]?.n).toBe(4);
  });

  it('a tampered row reads as NOT_FOUND / HANDLE_NOT_OWNED, not INTERNAL', async () => {
    const handle = await put();
    await sql`update handles set auth_tag = set_byte(auth_tag, 3, get_byte(auth_tag, 3) # 128)`.execute(
      database.db,
    );
    expect(
      await failure(
        call('resolveForPipe', { principalId: 'agent-1', handleId: handle.id, decisionId: 'd' }),
      ),
    ).toMatchObject({ code: 'NOT_FOUND', reason: 'HANDLE_NOT_OWNED' });
    const [entry] = await auditFor(handle.id, 1);
    expect(entry).toMatchObject({ outcome: 'deny', rule: 'payload_unauthenticated' });
  });

  it.each<[string, Method, Record<string, unknown>, string]>([
    [
      'Put without owner',
      'put',
      { ...putRequest(), ownerPrincipalId: '' },
      'ownerPrincipalId: is required',
    ],
    [
      'Put without capability',
      'put',
      { ...putRequest(), producingCapability: '' },
      'producingCapability: is required',
    ],
    [
      'Put with a bad capability',
      'put',
      { ...putRequest(), producingCapability: 'a b/c' },
      'producingCapability: must be provider/tool',
    ],
    [
      'Put with a bad label key',
      'put',
      { ...putRequest(), labels: { 'a b': 'x' } },
      'labels["a b"]: key must be',
    ],
    [
      'Put with a negative ttl',
      'put',
      { ...putRequest(), ttl: { seconds: -5, nanos: 0 } },
      'ttl: must be at least one millisecond',
    ],
    [
      'Put with a zero ttl',
      'put',
      { ...putRequest(), ttl: { seconds: 0, nanos: 0 } },
      'ttl: must be at least one millisecond',
    ],
    [
      'Put with bad ttl nanos',
      'put',
      { ...putRequest(), ttl: { seconds: 1, nanos: -1 } },
      'ttl.nanos: must be within',
    ],
    [
      'Peek without principal',
      'peek',
      { handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA' },
      'principalId: is required',
    ],
    ['Peek without handle', 'peek', { principalId: 'agent-1' }, 'handleId: is required'],
    [
      'Peek with a malformed handle',
      'peek',
      { principalId: 'agent-1', handleId: '../etc/passwd' },
      'handleId: is not a handle id',
    ],
    [
      'Peek with negative max bytes',
      'peek',
      { principalId: 'agent-1', handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA', maxBytes: -1 },
      'maxBytes: must be 0',
    ],
    [
      'ResolveForPipe without decision',
      'resolveForPipe',
      { principalId: 'agent-1', handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA' },
      'decisionId: is required',
    ],
    [
      'ResolveForPipe with a control character',
      'resolveForPipe',
      { principalId: 'agent-1\u0007', handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA', decisionId: 'd' },
      'principalId: contains a control character',
    ],
    [
      'Delete without principal',
      'delete',
      { handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA' },
      'principalId: is required',
    ],
    ['Delete without handle', 'delete', { principalId: 'agent-1' }, 'handleId: is required'],
  ])('%s: INVALID_ARGUMENT / INPUT_INVALID', async (_, method, request, detail) => {
    const f = await failure(call(method, request));
    expect(f).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INPUT_INVALID' });
    expect(f.details.startsWith(detail)).toBe(true);
  });

  it('ExpireNow with malformed input: INVALID_ARGUMENT; unknown handle: NOT_FOUND', async () => {
    expect(await failure(call('expireNow', { handleId: '' }, operator()))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      reason: 'INPUT_INVALID',
      details: 'handleId: is required',
    });
    expect(
      await failure(
        call(
          'expireNow',
          { handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA', reason: 'x'.repeat(1025) },
          operator(),
        ),
      ),
    ).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INPUT_INVALID' });
    expect(
      await failure(call('expireNow', { handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA' }, operator())),
    ).toMatchObject({ code: 'NOT_FOUND', reason: 'HANDLE_NOT_OWNED' });
  });
});
