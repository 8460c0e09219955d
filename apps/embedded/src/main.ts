import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  benchmarkOnlyEnvFields,
  ConfigError,
  configFields,
  createLogger,
  loadConfig,
  mintToken,
} from '@hcp/platform';
import { startEdge, type RunningEdge } from '@hcp/edge';
import { runDemoAgent } from './demo-agent';
import {
  createDemoSandbox,
  demoCapabilitySettings,
  demoGrants,
  DEMO_PRINCIPALS,
  filesystemProvider,
} from './demo-world';
import { startEmbedded } from './embedded';
import { seedDemoGrants } from './seed';

/**
 * `pnpm start`: the whole stack in one process — grant-store, policy-decision, handle-vault,
 * audit-log and the edge, each on its own loopback port, PGlite storage, the in-process bus.
 * Creates a sandbox folder served by the real filesystem MCP server, seeds two demo principals,
 * prints the MCP URL, tokens and an example, runs that example once itself, then serves until
 * SIGINT/SIGTERM (or exits with --once: 0 when the example behaved, 1 when not).
 */
const schema = z.object({
  HCP_HOST: z.string().default('127.0.0.1'),
  HCP_EDGE_PORT: configFields.port(8080),
  HCP_GRANT_STORE_PORT: configFields.port(50051),
  HCP_PDP_GRPC_PORT: configFields.port(50052),
  HCP_PDP_HTTP_PORT: configFields.port(8081),
  HCP_VAULT_PORT: configFields.port(50053),
  HCP_AUDIT_HTTP_PORT: configFields.port(8082),
  HCP_AUTH_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  HCP_SESSION_KEY: z.string().min(32, 'at least 32 characters').optional(),
  HCP_VAULT_KEYS: z.string().optional(),
  HCP_VAULT_ACTIVE_KEY: z.string().optional(),
  HCP_PGLITE_DIR: z.string().optional(),
  HCP_SANDBOX_DIR: z.string().default('.hcp/sandbox'),
  HCP_STATE_DIR: z.string().default('.hcp'),
  HCP_SEED_DEMO: configFields.flag(true),
  HCP_PDP_MAX_STALENESS_MS: configFields.millis(5000),
  HCP_AUTHZEN_TOKEN: z.string().min(16).optional(),
  // Benchmark-only switches, present only to be refused: `pnpm start` is the product, and the
  // baselines and ablations are composed by bench/ in code (pnpm bench:attacks).
  ...benchmarkOnlyEnvFields,
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
  const running: { edge?: RunningEdge } = {};
  const stop = async (code: number) => {
    await running.edge?.close();
    await stack.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const sandbox = await createDemoSandbox(resolve(config.HCP_SANDBOX_DIR));
  const edge = await startEdge({
    host: config.HCP_HOST,
    port: config.HCP_EDGE_PORT,
    grantStoreUrl: stack.grantStoreUrl,
    pdpUrl: stack.pdpUrl,
    vaultUrl: stack.vaultUrl,
    bus: stack.bus,
    audit: stack.audit,
    verifier: stack.auth,
    sessionKeys: [
      { id: 'k1', secret: config.HCP_SESSION_KEY ?? randomBytes(32).toString('base64url') },
    ],
    providers: [filesystemProvider(sandbox)],
    capabilitySettings: demoCapabilitySettings(sandbox),
  });
  running.edge = edge;

  // Grants name capabilities, so they are written once the edge has pinned its providers' tools.
  if (config.HCP_SEED_DEMO) await seedDemoGrants(stack.grantStoreUrl, demoGrants(sandbox));

  console.log('HCP edge: every invariant I1-I8 enforced');
  console.log(`edge (MCP)       ${edge.url}`);
  console.log(`grant-store      grpc://${stack.grantStoreUrl}`);
  console.log(`policy-decision  grpc://${stack.pdpUrl}`);
  if (stack.pdpHttpPort !== null)
    console.log(
      `AuthZEN          http://${config.HCP_HOST}:${stack.pdpHttpPort}/access/v1/evaluation`,
    );
  console.log(`handle-vault     grpc://${stack.vaultUrl}`);
  console.log(`audit-log        ${stack.auditUrl}/v1/audit/entries`);
  console.log(`sandbox          ${sandbox.root}`);

  // Demo tokens signed with this run's secret (set HCP_AUTH_HS256_SECRET to keep them across runs).
  const mint = (id: string, kind: 'operator' | 'agent') =>
    mintToken({ id, kind }, { ...stack.auth, ttlSec: 12 * 3600 });
  const stateDir = resolve(config.HCP_STATE_DIR);
  await mkdir(stateDir, { recursive: true });
  const tokens = {
    alice: await mint(DEMO_PRINCIPALS.alice, 'agent'),
    bob: await mint(DEMO_PRINCIPALS.bob, 'agent'),
    operator: await mint(DEMO_PRINCIPALS.operator, 'operator'),
  };
  for (const [name, token] of Object.entries(tokens))
    await writeFile(join(stateDir, `${name}.token`), `${token}\n`, { mode: 0o600 });
  const rel = relative(process.cwd(), stateDir) || '.';
  console.log(
    `\ndemo tokens (12 h) in ${rel}/: alice.token (reads public/ and secrets/), bob.token (lists public/), operator.token (approves, reads the audit)`,
  );
  console.log(`\ntry it from another terminal:
  export HCP_TOKEN=$(cat ${rel}/alice.token)
  pnpm -s agent call fs.read_text_file '{"path":"${sandbox.publicDir}/hello.txt"}'   # a handle; then: pnpm -s agent peek <handle>
  pnpm -s agent call fs.read_text_file '{"path":"${sandbox.publicDir}/../../../../../../../../etc/passwd"}'   # denied: reason code + decision id
  curl -s -H "authorization: Bearer $(cat ${rel}/operator.token)" '${stack.auditUrl}/v1/audit/entries?outcome=deny&limit=5'`);

  if (config.HCP_SEED_DEMO) {
    const ok = await runDemoAgent({ url: edge.url, token: tokens.alice, sandbox });
    await showAudit(stack.auditUrl, tokens.operator);
    if (!ok && values.once) return stop(1);
  }
  if (values.once) return stop(0);
  console.log('\nserving; Ctrl-C to stop');
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
