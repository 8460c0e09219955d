import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseAblations } from '@hcp/policy';
import { ALICE, BOB, activeSession, call, path } from '@hcp/policy/testing';
import {
  callUnary,
  ConfigError,
  configFields,
  createGrpcClient,
  createLogger,
  loadConfig,
} from '@hcp/platform';
import { decideRequestToProto, decisionFromProto, policy } from '@hcp/proto';
import { startEmbedded } from './embedded';
import { seedDemo } from './seed';

/**
 * `pnpm start`: the embedded runtime. grant-store and policy-decision in one
 * process (each with its own gRPC server on loopback), PGlite storage, the
 * in-process bus. Seeds the demo world, shows a few decisions made over gRPC,
 * then serves until SIGINT/SIGTERM (or exits at once with --once).
 */
const schema = z.object({
  HCP_HOST: z.string().default('127.0.0.1'),
  HCP_GRANT_STORE_PORT: configFields.port(50051),
  HCP_PDP_GRPC_PORT: configFields.port(50052),
  HCP_PDP_HTTP_PORT: configFields.port(8081),
  HCP_PGLITE_DIR: z.string().optional(),
  HCP_SEED_DEMO: configFields.flag(true),
  HCP_PDP_MAX_STALENESS_MS: configFields.millis(5000),
  HCP_AUTHZEN_TOKEN: z.string().min(16).optional(),
  HCP_ABLATIONS: z.string().optional(),
});

const log = createLogger('embedded.main');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { once: { type: 'boolean', default: false } } });
  const config = loadConfig(schema);
  const stack = await startEmbedded({
    host: config.HCP_HOST,
    grantStorePort: config.HCP_GRANT_STORE_PORT,
    pdpGrpcPort: config.HCP_PDP_GRPC_PORT,
    pdpHttpPort: config.HCP_PDP_HTTP_PORT,
    maxStalenessMs: config.HCP_PDP_MAX_STALENESS_MS,
    ablations: parseAblations(config.HCP_ABLATIONS),
    authzenToken: config.HCP_AUTHZEN_TOKEN ?? null,
    ...(config.HCP_PGLITE_DIR !== undefined ? { dataDir: config.HCP_PGLITE_DIR } : {}),
  });
  const stop = async (code: number) => {
    await stack.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  console.log(`grant-store      grpc://${stack.grantStoreUrl}`);
  console.log(`policy-decision  grpc://${stack.pdpUrl}`);
  if (stack.pdpHttpPort !== null)
    console.log(
      `AuthZEN          http://${config.HCP_HOST}:${stack.pdpHttpPort}/access/v1/evaluation`,
    );

  if (config.HCP_SEED_DEMO) {
    const seeded = await seedDemo(stack.grantStoreUrl);
    console.log(
      `\nseeded ${seeded.capabilities} capabilities and ${seeded.grants.length} grants (the demo world)`,
    );
    await showDecisions(stack.pdpUrl);
  }
  if (values.once) return stop(0);
  console.log('\nserving; Ctrl-C to stop');
}

async function showDecisions(pdpUrl: string): Promise<void> {
  const client = createGrpcClient(policy.PolicyDecisionClient, pdpUrl);
  const ask = async (title: string, principal: typeof ALICE, p: string) => {
    const res = await callUnary(
      client.decide.bind(client),
      decideRequestToProto({
        principal,
        session: activeSession(principal.id),
        call: call('fs/read_file', path(p), { path: p }),
      }),
    );
    const d = decisionFromProto(res.decision!);
    console.log(`  ${d.outcome.toUpperCase().padEnd(5)} ${d.reason.padEnd(18)} ${title}`);
  };
  console.log('\ndecisions over gRPC:');
  await ask('alice reads /data/app/report.txt', ALICE, '/data/app/report.txt');
  await ask('alice reads /data/app_evil/x (sibling prefix)', ALICE, '/data/app_evil/x');
  await ask('bob reads /data/app/report.txt (not his grant)', BOB, '/data/app/report.txt');
  client.close();
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) log.fatal({ problems: err.problems }, err.message);
  else log.fatal({ err }, 'embedded stack failed');
  process.exit(err instanceof ConfigError ? 2 : 1);
});
