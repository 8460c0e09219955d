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
  mintToken,
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
  HCP_VAULT_PORT: configFields.port(50053),
  HCP_AUDIT_HTTP_PORT: configFields.port(8082),
  HCP_AUTH_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  HCP_VAULT_KEYS: z.string().optional(),
  HCP_VAULT_ACTIVE_KEY: z.string().optional(),
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
    vaultPort: config.HCP_VAULT_PORT,
    auditHttpPort: config.HCP_AUDIT_HTTP_PORT,
    ...(config.HCP_AUTH_HS256_SECRET !== undefined
      ? {
          auth: {
            issuer: 'hcp-embedded',
            audience: 'hcp',
            hs256Secret: config.HCP_AUTH_HS256_SECRET,
          },
        }
      : {}),
    ...(config.HCP_VAULT_KEYS !== undefined
      ? { vaultKeys: { keys: config.HCP_VAULT_KEYS, active: config.HCP_VAULT_ACTIVE_KEY ?? '' } }
      : {}),
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
  console.log(`handle-vault     grpc://${stack.vaultUrl}`);
  console.log(`audit-log        ${stack.auditUrl}/v1/audit/entries`);
  // Demo tokens signed with this run's secret (set HCP_AUTH_HS256_SECRET to keep them across runs).
  const mint = (id: string, kind: 'operator' | 'agent') =>
    mintToken({ id, kind }, { ...stack.auth, ttlSec: 12 * 3600 });
  const operatorToken = await mint('demo-operator', 'operator');
  console.log(`\noperator token (12 h):\n${operatorToken}`);
  console.log(
    `agent token for alice (the audit refuses it with 403):\n${await mint('alice', 'agent')}`,
  );

  if (config.HCP_SEED_DEMO) {
    const seeded = await seedDemo(stack.grantStoreUrl);
    console.log(
      `\nseeded ${seeded.capabilities} capabilities and ${seeded.grants.length} grants (the demo world)`,
    );
    await showDecisions(stack.pdpUrl);
    await showAudit(stack.auditUrl, operatorToken);
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

async function showAudit(auditUrl: string, token: string): Promise<void> {
  const get = async (path: string) => {
    const res = await fetch(`${auditUrl}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await res.json()) as Record<string, unknown>;
  };
  // Entries arrive through the durable stream; give ingestion a moment.
  let entries: unknown[] = [];
  for (let i = 0; i < 50 && entries.length < 3; i++) {
    entries =
      ((await get('/v1/audit/entries?limit=1000'))['entries'] as unknown[] | undefined) ?? [];
    if (entries.length < 3) await new Promise((r) => setTimeout(r, 100));
  }
  const verify = await get('/v1/audit/verify');
  console.log(`\naudit: ${entries.length} entries so far; chain verify: ${JSON.stringify(verify)}`);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) log.fatal({ problems: err.problems }, err.message);
  else log.fatal({ err }, 'embedded stack failed');
  process.exit(err instanceof ConfigError ? 2 : 1);
});
