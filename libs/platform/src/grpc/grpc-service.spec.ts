import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import {
  loadPackageDefinition,
  credentials,
  Metadata,
  status,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HcpError } from '@hcp/core';
import { grants } from '@hcp/proto';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { callUnary, createGrpcClient } from './grpc-client';
import { ERROR_DETAIL_KEY, GrpcStatusError, reasonOfGrpcError } from './errors';
import { startGrpcService, type RunningGrpcService } from './grpc-service';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A stub GrantStore whose GetGrant behaviour is chosen by the requested id.
@Controller()
class StubGrantStore {
  @GrpcMethod('GrantStore', 'GetGrant')
  async getGrant(
    req: grants.GetGrantRequest,
    metadata: Metadata,
    call: { getPath(): string },
  ): Promise<grants.GetGrantResponse> {
    if (req.grantId === 'bad') throw new HcpError('INPUT_INVALID', 'grantId: must not be "bad"');
    if (req.grantId === 'boom') throw new Error('secret internals: db password is hunter2');
    if (req.grantId === 'missing') throw new GrpcStatusError(status.NOT_FOUND, 'no such grant');
    if (req.grantId.startsWith('slow')) await sleep(400);
    // Nest hands the handler (message, metadata, call): the caller's metadata and the grpc-js call.
    const echo = metadata.get('x-echo')[0];
    return grants.GetGrantResponse.fromPartial({
      grant: {
        id: req.grantId,
        principalId: typeof echo === 'string' ? echo : 'p1',
        capabilities: ['fs/read'],
        scopes: [call.getPath()],
        createdAt: { seconds: 1_700_000_000, nanos: 5 },
        revision: 3,
      },
    });
  }
}

@Module({ controllers: [StubGrantStore] })
class StubModule {}

interface HealthClient {
  check(
    req: { service: string },
    opts: { deadline: Date },
    cb: (err: ServiceError | null, res: { status: string }) => void,
  ): void;
}

function healthClient(url: string): HealthClient {
  const def = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const pkg = loadPackageDefinition(def) as unknown as {
    grpc: {
      health: {
        v1: {
          Health: new (
            url: string,
            creds: ReturnType<typeof credentials.createInsecure>,
          ) => HealthClient;
        };
      };
    };
  };
  return new pkg.grpc.health.v1.Health(url, credentials.createInsecure());
}

function check(client: HealthClient, service = ''): Promise<string> {
  return new Promise((resolve, reject) =>
    client.check({ service }, { deadline: new Date(Date.now() + 2000) }, (err, res) =>
      err ? reject(err) : resolve(res.status),
    ),
  );
}

describe('startGrpcService', () => {
  let svc: RunningGrpcService;
  let client: grants.GrantStoreClient;

  beforeEach(async () => {
    svc = await startGrpcService({
      name: 'stub-grant-store',
      module: StubModule,
      services: { 'hcp.grants.v1.GrantStore': grants.GrantStoreService },
      port: 0,
      drainTimeoutMs: 3000,
    });
    client = createGrpcClient(grants.GrantStoreClient, svc.url);
  });

  afterEach(async () => {
    client.close();
    await svc.close();
  });

  it('picks a free port and serves a call over the wire', async () => {
    expect(svc.port).toBeGreaterThan(0);
    expect(svc.url).toBe(`127.0.0.1:${svc.port}`);
    const res = await callUnary(client.getGrant.bind(client), { grantId: 'g1' });
    expect(res.grant?.id).toBe('g1');
    expect(res.grant?.principalId).toBe('p1');
    expect(res.grant?.createdAt).toEqual({ seconds: 1_700_000_000, nanos: 5 });
    expect(res.grant?.revision).toBe(3);
    expect(res.grant?.scopes).toEqual(['/hcp.grants.v1.GrantStore/GetGrant']);
  });

  it('decodes requests and encodes responses with the generated codecs, metadata included', async () => {
    const md = new Metadata();
    md.set('x-echo', 'from-metadata');
    const res = await new Promise<grants.GetGrantResponse>((resolve, reject) =>
      client.getGrant({ grantId: 'g2' }, md, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(res).toEqual(
      grants.GetGrantResponse.fromPartial({
        grant: {
          id: 'g2',
          principalId: 'from-metadata',
          capabilities: ['fs/read'],
          scopes: ['/hcp.grants.v1.GrantStore/GetGrant'],
          createdAt: { seconds: 1_700_000_000, nanos: 5 },
          revision: 3,
        },
      }),
    );
  });

  it('reports SERVING for the server and each service', async () => {
    const health = healthClient(svc.url);
    await expect(check(health)).resolves.toBe('SERVING');
    await expect(check(health, 'hcp.grants.v1.GrantStore')).resolves.toBe('SERVING');
    await expect(check(health, 'nope')).rejects.toMatchObject({ code: status.NOT_FOUND });
    (health as unknown as { close(): void }).close();
  });

  it('sends an HcpError as its gRPC status with the ErrorDetail in trailing metadata', async () => {
    const err = await callUnary(client.getGrant.bind(client), { grantId: 'bad' }).catch(
      (e: ServiceError) => e,
    );
    expect(err).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'grantId: must not be "bad"',
    });
    const e = err as ServiceError;
    expect(e.metadata.get(ERROR_DETAIL_KEY)).toHaveLength(1);
    expect(reasonOfGrpcError(e)).toEqual({
      reason: 'INPUT_INVALID',
      detail: 'grantId: must not be "bad"',
    });
  });

  it('sends a GrpcStatusError as a plain status', async () => {
    const err = (await callUnary(client.getGrant.bind(client), { grantId: 'missing' }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toBe('no such grant');
    expect(reasonOfGrpcError(err)).toBeUndefined();
  });

  it('hides unexpected errors behind INTERNAL', async () => {
    const err = (await callUnary(client.getGrant.bind(client), { grantId: 'boom' }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.INTERNAL);
    expect(err.details).toBe('internal error');
    expect(JSON.stringify(err)).not.toContain('hunter2');
    expect(reasonOfGrpcError(err)).toBeUndefined();
  });

  it('enforces the client deadline', async () => {
    const err = (await callUnary(
      client.getGrant.bind(client),
      { grantId: 'slow' },
      { deadlineMs: 50 },
    ).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
  });

  it('drains an in-flight call on close, refuses new ones and reports NOT_SERVING', async () => {
    const health = healthClient(svc.url);
    await expect(check(health)).resolves.toBe('SERVING');
    const slow = callUnary(client.getGrant.bind(client), { grantId: 'slow-1' });
    await sleep(100); // the call is in the handler now
    const closing = svc.close();
    await expect(check(health)).resolves.toBe('NOT_SERVING');
    await expect(check(health, 'hcp.grants.v1.GrantStore')).resolves.toBe('NOT_SERVING');
    const refused = (await callUnary(client.getGrant.bind(client), { grantId: 'g2' }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(refused.code).toBe(status.UNAVAILABLE);
    await expect(slow).resolves.toMatchObject({ grant: { id: 'slow-1' } });
    await closing;
    (health as unknown as { close(): void }).close();
  });
});
