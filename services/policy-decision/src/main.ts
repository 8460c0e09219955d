import 'reflect-metadata';
import {
  ConfigError,
  createLogger,
  NatsBus,
  startTelemetry,
  shutdownTelemetry,
} from '@hcp/platform';
import { loadPolicyDecisionConfig } from './config';
import { startPolicyDecision } from './policy-decision';

// Distributed entry point: one process, configured from the environment, stopped by SIGTERM/SIGINT.
const log = createLogger('policy-decision.main');

async function main(): Promise<void> {
  const config = loadPolicyDecisionConfig();
  startTelemetry({ serviceName: 'hcp-policy-decision' });
  const bus = await NatsBus.connect({ servers: config.HCP_NATS_URL, name: 'hcp-policy-decision' });
  const pdp = await startPolicyDecision({
    grantStoreUrl: config.HCP_GRANT_STORE_URL,
    bus,
    grpcPort: config.HCP_PDP_GRPC_PORT,
    httpPort: config.HCP_PDP_HTTP_PORT,
    host: config.HCP_PDP_HOST,
    maxStalenessMs: config.HCP_PDP_MAX_STALENESS_MS,
    fetchDeadlineMs: config.HCP_PDP_FETCH_DEADLINE_MS,
    protocolVersions: config.HCP_PROTOCOL_VERSIONS,
    ablations: config.HCP_ABLATIONS,
    authzenToken: config.HCP_AUTHZEN_TOKEN ?? null,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    void pdp
      .close()
      .then(() => bus.close())
      .then(() => shutdownTelemetry())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    log.fatal({ problems: err.problems }, err.message);
    process.exit(2);
  }
  log.fatal({ err }, 'policy-decision failed to start');
  process.exit(1);
});
