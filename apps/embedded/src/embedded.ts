import { startGrantStore } from '@hcp/grant-store';
import { startPolicyDecision, DEFAULT_PROTOCOL_VERSIONS } from '@hcp/policy-decision';
import { createLogger, InProcessBus, type EventBus } from '@hcp/platform';
import type { AblationSwitch } from '@hcp/policy';

/** How to run the embedded stack: every service in this process, gRPC over loopback, PGlite storage. */
export interface EmbeddedOptions {
  /** PGlite data directory; absent: in memory (lost on exit). */
  readonly dataDir?: string;
  readonly host?: string;
  readonly grantStorePort?: number;
  readonly pdpGrpcPort?: number;
  /** AuthZEN HTTP port; null: no HTTP side. */
  readonly pdpHttpPort?: number | null;
  readonly maxStalenessMs?: number;
  readonly ablations?: readonly AblationSwitch[];
  readonly authzenToken?: string | null;
}

/** The running stack and the addresses a client needs. */
export interface EmbeddedStack {
  readonly bus: EventBus;
  readonly grantStoreUrl: string;
  readonly pdpUrl: string;
  readonly pdpHttpPort: number | null;
  close(): Promise<void>;
}

const log = createLogger('Embedded');

/**
 * The composition root of the embedded mode. It is the one place that imports
 * more than one service: each service still runs its own gRPC server and talks
 * to the others over loopback, so this is the distributed code path in one process.
 */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedStack> {
  const host = options.host ?? '127.0.0.1';
  const bus = new InProcessBus();
  const grantStore = await startGrantStore({
    db:
      options.dataDir !== undefined
        ? { kind: 'pglite', dataDir: options.dataDir }
        : { kind: 'pglite' },
    bus,
    host,
    port: options.grantStorePort ?? 0,
  });
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
  });
  log.info(
    { grantStore: grantStore.url, pdp: pdp.grpcUrl, authzen: pdp.httpPort },
    'embedded stack started',
  );
  return {
    bus,
    grantStoreUrl: grantStore.url,
    pdpUrl: pdp.grpcUrl,
    pdpHttpPort: pdp.httpPort,
    close: async () => {
      await pdp.close();
      await grantStore.close();
      await bus.close();
    },
  };
}
