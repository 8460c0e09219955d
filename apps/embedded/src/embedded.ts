import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { startAuditLog } from '@hcp/audit-log';
import { startGrantStore } from '@hcp/grant-store';
import { startHandleVault, VaultKeyring } from '@hcp/handle-vault';
import { startPolicyDecision, DEFAULT_PROTOCOL_VERSIONS } from '@hcp/policy-decision';
import {
  createAuditPublisher,
  createLogger,
  InProcessBus,
  type AuditPublisher,
  type Database,
  type DatabaseConfig,
  type EventBus,
  type TokenVerifierOptions,
} from '@hcp/platform';
import type { AblationSwitch } from '@hcp/policy';

/** How to run the embedded stack: every service in this process, gRPC over loopback, PGlite storage. */
export interface EmbeddedOptions {
  /** PGlite data directory root (one subfolder per service); absent: in memory (lost on exit). */
  readonly dataDir?: string;
  readonly host?: string;
  readonly grantStorePort?: number;
  readonly pdpGrpcPort?: number;
  /** AuthZEN HTTP port; null: no HTTP side. */
  readonly pdpHttpPort?: number | null;
  readonly vaultPort?: number;
  readonly auditHttpPort?: number;
  readonly maxStalenessMs?: number;
  readonly ablations?: readonly AblationSwitch[];
  readonly authzenToken?: string | null;
  /** How audit-log verifies operator tokens; default: HS256 with a random per-process secret. */
  readonly auth?: TokenVerifierOptions & { readonly hs256Secret: string };
  /** Vault keyring text `kid:base64,...` and active id; default: one random key (memory only). */
  readonly vaultKeys?: { readonly keys: string; readonly active: string };
  /**
   * Storage per service; default PGlite (in memory, or under dataDir). Tests pass PostgreSQL here
   * to run the same composition on the distributed adapters; an open Database stays the caller's.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly database?: (service: string) => Promise<DatabaseConfig | Database<any>>;
  /** The event bus; default a new in-process bus (closed with the stack). A given bus stays the caller's. */
  readonly bus?: EventBus;
}

/** The running stack and the addresses a client needs. */
export interface EmbeddedStack {
  readonly bus: EventBus;
  readonly grantStoreUrl: string;
  readonly pdpUrl: string;
  readonly pdpHttpPort: number | null;
  readonly vaultUrl: string;
  readonly auditUrl: string;
  /** The token settings audit-log accepts, so the caller can mint demo tokens. */
  readonly auth: TokenVerifierOptions & { readonly hs256Secret: string };
  /** The publisher a co-located caller (e.g. the edge) records its own entries through. */
  readonly audit: AuditPublisher;
  close(): Promise<void>;
}

const log = createLogger('Embedded');

/**
 * The composition root of the embedded mode. It is the one place that imports
 * more than one service: each service still runs its own server and talks to
 * the others over loopback and the bus, so this is the distributed code path
 * in one process, with PGlite and the in-process bus as the adapters.
 */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedStack> {
  const host = options.host ?? '127.0.0.1';
  const dir = async (name: string) =>
    options.database !== undefined
      ? options.database(name)
      : options.dataDir !== undefined
        ? { kind: 'pglite' as const, dataDir: `${options.dataDir}/${name}` }
        : { kind: 'pglite' as const };
  const auth = options.auth ?? {
    issuer: 'hcp-embedded',
    audience: 'hcp',
    hs256Secret: randomBytes(32).toString('base64url'),
  };
  const keys = options.vaultKeys ?? {
    keys: `k1:${randomBytes(32).toString('base64')}`,
    active: 'k1',
  };
  if (options.dataDir !== undefined) mkdirSync(options.dataDir, { recursive: true });
  const ownsBus = options.bus === undefined;
  const bus = options.bus ?? new InProcessBus();
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse())
      await c().catch((err: unknown) => log.error({ err }, 'close failed'));
    if (ownsBus) await bus.close();
  };
  try {
    const auditLog = await startAuditLog({
      db: await dir('audit-log'),
      bus,
      host,
      httpPort: options.auditHttpPort ?? 0,
      verifier: auth,
    });
    closers.push(() => auditLog.close());
    const publishers: AuditPublisher[] = [];
    const publisher = async (source: string) => {
      const p = await createAuditPublisher(bus, { source });
      publishers.push(p);
      closers.push(() => p.close());
      return p;
    };
    const grantStore = await startGrantStore({
      db: await dir('grant-store'),
      bus,
      host,
      port: options.grantStorePort ?? 0,
      audit: await publisher('grant-store'),
      // Approvals are decided only by operator tokens (I2: never the agent's own client).
      verifier: auth,
    });
    closers.push(() => grantStore.close());
    const vault = await startHandleVault({
      db: await dir('handle-vault'),
      audit: await publisher('handle-vault'),
      keys: VaultKeyring.parse(keys.keys, keys.active),
      host,
      port: options.vaultPort ?? 0,
    });
    closers.push(() => vault.close());
    const pdp = await startPolicyDecision({
      grantStoreUrl: grantStore.url,
      bus,
      host,
      grpcPort: options.pdpGrpcPort ?? 0,
      httpPort: options.pdpHttpPort === undefined ? 0 : options.pdpHttpPort,
      maxStalenessMs: options.maxStalenessMs ?? 5000,
      fetchDeadlineMs: 1000,
      protocolVersions: DEFAULT_PROTOCOL_VERSIONS,
      ablations: options.ablations ?? [],
      authzenToken: options.authzenToken ?? null,
      audit: await publisher('policy-decision'),
    });
    closers.push(() => pdp.close());
    const edgeAudit = await publisher('edge');
    log.info(
      {
        grantStore: grantStore.url,
        pdp: pdp.grpcUrl,
        authzen: pdp.httpPort,
        vault: vault.url,
        audit: auditLog.url,
      },
      'embedded stack started',
    );
    return {
      bus,
      grantStoreUrl: grantStore.url,
      pdpUrl: pdp.grpcUrl,
      pdpHttpPort: pdp.httpPort,
      vaultUrl: vault.url,
      auditUrl: auditLog.url,
      auth,
      audit: edgeAudit,
      close,
    };
  } catch (err: unknown) {
    await close();
    throw err;
  }
}
