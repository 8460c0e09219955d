import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { credentials, makeGenericClientConstructor, Metadata, type Client } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { callUnary, createGrpcClient, findFreePort } from '@hcp/platform';
import {
  capabilityToProto,
  decideRequestToProto,
  decisionFromProto,
  grants,
  policy,
} from '@hcp/proto';
import { CAPABILITIES, activeSession, call, path } from '@hcp/policy/testing';
import { summarize, type Summary } from '../micro/stats';

/**
 * `pnpm bench:decide [--distributed]`: the first distributed figures. The stack runs in
 * another process (embedded: apps/embedded; --distributed: deploy/local/run.sh with
 * PostgreSQL and NATS); this process is the client. In one run it measures:
 *  - floor: grpc.health.v1.Health/Check on the policy-decision server (an empty unary call
 *    on the same server and channel as Decide);
 *  - Decide, cache hit: one principal, decided over and over;
 *  - revoke-to-deny: revoke a grant through grant-store, then Decide until it denies.
 */
const { values } = parseArgs({
  options: {
    distributed: { type: 'boolean', default: false },
    iterations: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '2000' },
    revocations: { type: 'string', default: '50' },
    json: { type: 'string' },
  },
});
const iterations = Number(values.iterations);
const warmup = Number(values.warmup);
const revocations = Number(values.revocations);
const root = join(__dirname, '../../..');

async function startStack(): Promise<{ child: ChildProcess; grantStore: string; pdp: string }> {
  const [gs, pdp, http] = await Promise.all([findFreePort(), findFreePort(), findFreePort()]);
  const env = {
    ...process.env,
    HCP_LOG_LEVEL: 'warn',
    HCP_GRANT_STORE_PORT: String(gs),
    HCP_PDP_GRPC_PORT: String(pdp),
    HCP_PDP_HTTP_PORT: String(http),
    HCP_SEED_DEMO: 'false',
  };
  const child = values.distributed
    ? spawn('bash', [join(root, 'deploy/local/run.sh')], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
        detached: true,
      })
    : spawn(process.execPath, [join(root, 'apps/embedded/dist/main.js')], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`stack did not start: ${out}`)), 120_000);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('policy-decision') && out.includes(`${pdp}`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`stack exited ${code}: ${out}`)));
  });
  return { child, grantStore: `127.0.0.1:${gs}`, pdp: `127.0.0.1:${pdp}` };
}

function stopStack(child: ChildProcess): void {
  if (values.distributed && child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  else child.kill('SIGTERM');
}

async function timeCalls(n: number, op: () => Promise<unknown>): Promise<Float64Array> {
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await op();
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return samples;
}

async function main(): Promise<void> {
  const stack = await startStack();
  const gs = createGrpcClient(grants.GrantStoreClient, stack.grantStore);
  const pdp = createGrpcClient(policy.PolicyDecisionClient, stack.pdp);
  const Health = makeGenericClientConstructor(healthService, 'Health');
  const health = new Health(stack.pdp, credentials.createInsecure()) as unknown as Client & {
    check(
      req: { service: string },
      md: Metadata,
      opts: object,
      cb: (e: Error | null, r: unknown) => void,
    ): void;
  };
  try {
    for (const c of CAPABILITIES)
      await callUnary(gs.putCapability.bind(gs), { capability: capabilityToProto(c) });
    const grant = (principalId: string) =>
      callUnary(gs.createGrant.bind(gs), {
        principalId,
        capabilities: ['fs/read_file'],
        resourcePatterns: [{ pattern: { $case: 'pathPrefix', value: '/data/app' } }],
        scopes: ['fs:read'],
        argumentConstraints: [],
        expiresAt: undefined,
      });
    const decide = async (principalId: string) => {
      const res = await callUnary(
        pdp.decide.bind(pdp),
        decideRequestToProto({
          principal: { id: principalId, kind: 'agent' },
          session: activeSession(principalId),
          call: call('fs/read_file', path('/data/app/a.txt'), { path: '/data/app/a.txt' }),
        }),
      );
      return decisionFromProto(res.decision!);
    };
    const check = () =>
      new Promise<unknown>((resolve, reject) =>
        health.check({ service: '' }, new Metadata(), { deadline: Date.now() + 2000 }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );

    await grant('bench-hit');
    if ((await decide('bench-hit')).outcome !== 'allow') throw new Error('setup: decision denied');
    await timeCalls(warmup, check);
    await timeCalls(warmup, () => decide('bench-hit'));
    // Interleave the two series in blocks so machine noise hits both alike.
    const floor: number[] = [];
    const hit: number[] = [];
    const block = 1000;
    for (let done = 0; done < iterations; done += block) {
      floor.push(...(await timeCalls(block, check)));
      hit.push(...(await timeCalls(block, () => decide('bench-hit'))));
    }

    const revokeMs = new Float64Array(revocations);
    for (let i = 0; i < revocations; i++) {
      const p = `bench-revoke-${i}`;
      const g = await grant(p);
      if ((await decide(p)).outcome !== 'allow') throw new Error('setup: revoke target denied');
      const t0 = process.hrtime.bigint();
      await callUnary(gs.revokeGrant.bind(gs), { grantId: g.grant!.id, reason: 'bench' });
      while ((await decide(p)).outcome === 'allow') {
        if (Number(process.hrtime.bigint() - t0) > 10e9)
          throw new Error('revocation never reached decisions');
      }
      revokeMs[i] = Number(process.hrtime.bigint() - t0);
    }

    const results: Record<string, Summary> = {
      floor_health_check: summarize(Float64Array.from(floor)),
      decide_cache_hit: summarize(Float64Array.from(hit)),
      revoke_to_deny: summarize(revokeMs),
    };
    const mode = values.distributed
      ? 'distributed (PostgreSQL + NATS, one process per service)'
      : 'embedded (one process, PGlite, in-process bus)';
    console.log(
      `HCP decision latency over gRPC — ${mode}; node ${process.version}; client in its own process`,
    );
    console.log('operation            n       mean ms   p50 ms   p99 ms   p50/floor');
    const f = results['floor_health_check']!;
    for (const [op, s] of Object.entries(results)) {
      console.log(
        `${op.padEnd(20)} ${String(s.iterations).padEnd(7)} ${s.meanMs.toFixed(3).padStart(8)} ${s.p50Ms.toFixed(3).padStart(8)} ${s.p99Ms.toFixed(3).padStart(8)}   ${(s.p50Ms / f.p50Ms).toFixed(2)}x`,
      );
    }
    if (values.json !== undefined) {
      writeFileSync(
        values.json,
        JSON.stringify(
          {
            benchmark: 'decide',
            mode,
            node: process.version,
            iterations,
            revocations,
            unit: 'ms',
            results,
          },
          null,
          2,
        ) + '\n',
      );
      console.log(`wrote ${values.json}`);
    }
  } finally {
    gs.close();
    pdp.close();
    health.close();
    stopStack(stack.child);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
