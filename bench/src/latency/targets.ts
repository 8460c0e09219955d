import { dirname, join } from 'node:path';
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  type Client as GrpcClient,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { HcpError, type Capability } from '@hcp/core';
import { capabilityToProto, core, decideRequestToProto, grants, policy } from '@hcp/proto';
import { CAPABILITIES, activeSession, call, path } from '@hcp/policy/testing';

/** Where everything the benchmark talks to listens; every address must be on loopback. */
export interface Targets {
  /** The floor server (bench/src/latency/floor-server.ts): an empty gRPC unary, in its own process. */
  readonly floorGrpc: string;
  /** NATS, for the request/reply floor; null when no nats-server is available (embedded mode). */
  readonly natsUrl: string | null;
  readonly grantStore: string;
  readonly pdp: string;
  /** The edge's MCP endpoint, the token of a principal allowed to read `edgeFile`, and that file. */
  readonly edgeUrl: string;
  readonly edgeToken: string;
  readonly edgeFile: string;
  /** The sandbox root the direct filesystem server is started on (the same folder the edge's serves). */
  readonly sandboxRoot: string;
}

/** Every operation the benchmark can time, closed-loop or under load. */
export const OPERATIONS = [
  'floor_grpc',
  'floor_pdp_health',
  'floor_nats',
  'decide_hit',
  'edge_call',
  'direct_call',
] as const;

/** One of OPERATIONS. */
export type Operation = (typeof OPERATIONS)[number];

/** The NATS subject the floor server answers on. */
export const FLOOR_NATS_SUBJECT = 'hcp.bench.floor';

/** The principal the cache-hit series decides for (its grants are cached by the first call). */
export const HIT_PRINCIPAL = 'bench-hit';

/** Per-call deadline: past it a call counts as an error, so no run can hang. */
export const CALL_DEADLINE_MS = 5000;

/** The benchmark's own capability: a copy of the fixture read tool under provider `bench`. */
export const BENCH_CAPABILITY: Capability = (() => {
  const read = CAPABILITIES.find((c) => c.id === 'fs/read_file');
  if (read === undefined) throw new Error('fixture fs/read_file missing');
  return { ...read, id: 'bench/read_file', provider: 'bench' };
})();

/**
 * Refuses anything but a loopback address: load from this benchmark must never leave the
 * machine (127.0.0.0/8, localhost, ::1).
 */
export function assertLoopback(address: string): void {
  let host: string;
  if (/^[a-z]+:\/\//i.test(address)) host = new URL(address).hostname;
  else host = address.replace(/:\d+$/, '');
  host = host.replace(/^\[|\]$/g, '');
  const ok =
    host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!ok) throw new HcpError('INPUT_INVALID', `target ${address} is not a loopback address`);
}

/** Every address in `t`, checked with assertLoopback. */
export function assertTargetsLoopback(t: Targets): void {
  for (const a of [t.floorGrpc, t.grantStore, t.pdp, t.edgeUrl, t.natsUrl])
    if (a !== null) assertLoopback(a);
}

/** A Decide request for `principalId` reading `file` under /data/app through the bench capability. */
export function benchDecideRequest(
  principalId: string,
  file = '/data/app/a.txt',
): policy.DecideRequest {
  return decideRequestToProto({
    principal: { id: principalId, kind: 'agent' },
    session: activeSession(principalId),
    call: call(
      BENCH_CAPABILITY.id,
      path(file),
      { path: file },
      {
        ...(BENCH_CAPABILITY.definitionDigest !== undefined
          ? { observedDefinitionDigest: BENCH_CAPABILITY.definitionDigest }
          : {}),
      },
    ),
  });
}

/** Absolute path of the real filesystem MCP server (the upstream the edge serves in the demo world). */
export function filesystemServerEntry(): string {
  const pkg = require.resolve('@modelcontextprotocol/server-filesystem/package.json');
  return join(dirname(pkg), 'dist', 'index.js');
}

type HealthClient = GrpcClient & {
  check(
    req: { service: string },
    md: Metadata,
    opts: { deadline: number },
    cb: (e: Error | null, r: { status?: number | string } | undefined) => void,
  ): void;
};

function healthClient(address: string): HealthClient {
  const Health = makeGenericClientConstructor(healthService, 'Health');
  return new Health(address, credentials.createInsecure()) as unknown as HealthClient;
}

function healthCheck(client: HealthClient): Promise<void> {
  return new Promise((resolve, reject) =>
    client.check(
      { service: '' },
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (e, r) => {
        if (e !== null) reject(e);
        else if (r?.status !== 'SERVING' && r?.status !== 1)
          reject(new Error(`health status ${String(r?.status)}`));
        else resolve();
      },
    ),
  );
}

/** One timed call: resolves when the answer is the expected one, rejects (an error) otherwise. */
export type Op = () => Promise<void>;

/** The clients a worker holds; closing them ends the worker cleanly. */
export interface Clients {
  op(name: Operation): Promise<Op>;
  readonly grantStore: grants.GrantStoreClient;
  readonly pdp: policy.PolicyDecisionClient;
  close(): Promise<void>;
}

/** Calls Decide once; resolves with the outcome number (1 allow, 2 deny). */
export function decideOnce(
  pdp: policy.PolicyDecisionClient,
  request: policy.DecideRequest,
): Promise<policy.DecideResponse> {
  return new Promise((resolve, reject) =>
    pdp.decide(request, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (e, r) =>
      e !== null ? reject(e) : resolve(r),
    ),
  );
}

/** True when a DecideResponse allows. */
export function allows(res: policy.DecideResponse): boolean {
  return res.decision?.outcome === core.Outcome.OUTCOME_ALLOW;
}

/**
 * Opens the clients of one worker process lazily: one gRPC channel per server, one NATS
 * connection, one MCP session to the edge, one stdio filesystem server for direct calls.
 */
export function openClients(t: Targets): Clients {
  assertTargetsLoopback(t);
  const grantStore = new grants.GrantStoreClient(t.grantStore, credentials.createInsecure());
  const pdp = new policy.PolicyDecisionClient(t.pdp, credentials.createInsecure());
  const closers: (() => Promise<void> | void)[] = [() => grantStore.close(), () => pdp.close()];
  const cache = new Map<Operation, Promise<Op>>();

  const mcp = async (transport: StdioClientTransport | StreamableHTTPClientTransport) => {
    const client = new Client({ name: 'hcp-bench', version: '0.1.0' });
    await client.connect(transport);
    closers.push(async () => {
      if (transport instanceof StreamableHTTPClientTransport)
        await transport.terminateSession().catch(() => undefined);
      await client.close();
    });
    return client;
  };
  const toolOp =
    (client: Client, name: string, args: Record<string, unknown>): Op =>
    async () => {
      const r = (await client.callTool({ name, arguments: args }, undefined, {
        timeout: CALL_DEADLINE_MS,
      })) as CallToolResult;
      if (r.isError === true) {
        const text = r.content.map((c) => (c.type === 'text' ? c.text : c.type)).join(' ');
        throw new Error(`${name}: tool error: ${text.slice(0, 200)}`);
      }
    };

  const build = async (name: Operation): Promise<Op> => {
    switch (name) {
      case 'floor_grpc':
      case 'floor_pdp_health': {
        const c = healthClient(name === 'floor_grpc' ? t.floorGrpc : t.pdp);
        closers.push(() => c.close());
        return () => healthCheck(c);
      }
      case 'floor_nats': {
        if (t.natsUrl === null) throw new Error('no NATS in this run');
        const nc: NatsConnection = await connect({ servers: t.natsUrl, name: 'hcp-bench' });
        closers.push(() => nc.close());
        const empty = new Uint8Array(0);
        return async () => {
          await nc.request(FLOOR_NATS_SUBJECT, empty, { timeout: CALL_DEADLINE_MS });
        };
      }
      case 'decide_hit': {
        const req = benchDecideRequest(HIT_PRINCIPAL);
        return async () => {
          const res = await decideOnce(pdp, req);
          if (!allows(res))
            throw new Error(`decide denied: ${res.decision?.explanation ?? 'no decision'}`);
        };
      }
      case 'edge_call': {
        const client = await mcp(
          new StreamableHTTPClientTransport(new URL(t.edgeUrl), {
            requestInit: { headers: { authorization: `Bearer ${t.edgeToken}` } },
          }),
        );
        return toolOp(client, 'fs.read_text_file', { path: t.edgeFile });
      }
      case 'direct_call': {
        const client = await mcp(
          new StdioClientTransport({
            command: process.execPath,
            args: [filesystemServerEntry(), t.sandboxRoot],
            stderr: 'ignore',
          }),
        );
        return toolOp(client, 'read_text_file', { path: t.edgeFile });
      }
    }
  };

  return {
    grantStore,
    pdp,
    op(name) {
      let p = cache.get(name);
      if (p === undefined) {
        p = build(name);
        cache.set(name, p);
      }
      return p;
    },
    async close() {
      for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    },
  };
}

/** Grants the bench capability to `principalId` on `prefix` (setup, not timed); returns the grant id. */
export async function grantBench(
  gs: grants.GrantStoreClient,
  principalId: string,
  prefix = '/data/app',
): Promise<string> {
  const res = await new Promise<grants.CreateGrantResponse>((resolve, reject) =>
    gs.createGrant(
      {
        principalId,
        capabilities: [BENCH_CAPABILITY.id],
        resourcePatterns: [{ pattern: { $case: 'pathPrefix', value: prefix } }],
        scopes: ['fs:read'],
        argumentConstraints: [],
        expiresAt: undefined,
      },
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (e, r) => (e !== null ? reject(e) : resolve(r)),
    ),
  );
  if (res.grant === undefined) throw new Error('createGrant returned no grant');
  return res.grant.id;
}

/** Puts the bench capability into the manifest (idempotent). */
export async function putBenchCapability(gs: grants.GrantStoreClient): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    gs.putCapability(
      { capability: capabilityToProto(BENCH_CAPABILITY) },
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (e) => (e !== null ? reject(e) : resolve()),
    ),
  );
}

/** Revokes a grant; resolves when grant-store has committed it. */
export function revokeGrant(gs: grants.GrantStoreClient, grantId: string): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    gs.revokeGrant(
      { grantId, reason: 'bench' },
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (e) => (e !== null ? reject(e) : resolve()),
    ),
  );
}
