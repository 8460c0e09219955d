import 'reflect-metadata';
import { createLogger, NatsBus, runService } from '@hcp/platform';
import { loadEdgeConfig, loadProvidersFile, verifierOptionsOf } from './config';
import { startEdge } from './edge';
import { NatsSessionMarks } from './protocol/nats-session-marks';

// Distributed entry point: one process, configured from the environment, stopped by SIGTERM/SIGINT.
// Session marks live in a NATS KV bucket, so a session survives a restart and lands on any replica.
const log = createLogger('edge.main');

runService('edge', async () => {
  const config = loadEdgeConfig();
  const file = loadProvidersFile(config.HCP_EDGE_PROVIDERS_FILE);

  const bus = await NatsBus.connect({ servers: config.HCP_NATS_URL, name: 'hcp-edge' });
  let marks: NatsSessionMarks | undefined;
  try {
    // A connection of its own: NatsBus does not expose its connection.
    marks = await NatsSessionMarks.connect({
      servers: config.HCP_NATS_URL,
      name: 'hcp-edge-session-marks',
      bucket: config.HCP_SESSION_MARKS_BUCKET,
      timeoutMs: config.HCP_SESSION_MARKS_TIMEOUT_MS,
    });
    const edge = await startEdge({
      host: config.HCP_HOST,
      port: config.HCP_EDGE_PORT,
      grantStoreUrl: config.HCP_GRANT_STORE_URL,
      pdpUrl: config.HCP_PDP_URL,
      vaultUrl: config.HCP_VAULT_URL,
      bus,
      verifier: verifierOptionsOf(config),
      sessionKeys: config.HCP_SESSION_KEYS,
      sessionMarks: marks,
      providers: file.providers,
      capabilitySettings: file.capabilitySettings,
    });
    log.info(
      {
        url: edge.url,
        // The production edge composes hcp only (loadEdgeConfig refuses HCP_EDGE_MODE / HCP_ABLATIONS).
        enforcement: 'hcp: every invariant I1-I8 enforced',
        providers: edge.registry.providerIds(),
        sessionMarks: { bucket: config.HCP_SESSION_MARKS_BUCKET, ttlMs: marks.bucketTtlMs },
      },
      'edge ready',
    );
    const owned = marks;
    return {
      close: async () => {
        await edge.close();
        await owned.close();
        await bus.close();
      },
    };
  } catch (err: unknown) {
    await marks?.close();
    await bus.close();
    throw err;
  }
});
