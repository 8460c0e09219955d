import 'reflect-metadata';
import { createAuditPublisher, NatsBus, runService } from '@hcp/platform';
import { loadPolicyDecisionConfig } from './config';
import { startPolicyDecision } from './policy-decision';

// Distributed entry point: one process, configured from the environment, stopped by SIGTERM/SIGINT.
runService('policy-decision', async () => {
  const config = loadPolicyDecisionConfig();
  const bus = await NatsBus.connect({ servers: config.HCP_NATS_URL, name: 'hcp-policy-decision' });
  const audit = await createAuditPublisher(bus, { source: 'policy-decision' });
  const pdp = await startPolicyDecision({
    audit,
    grantStoreUrl: config.HCP_GRANT_STORE_URL,
    bus,
    grpcPort: config.HCP_PDP_GRPC_PORT,
    httpPort: config.HCP_PDP_HTTP_PORT,
    host: config.HCP_PDP_HOST,
    maxStalenessMs: config.HCP_PDP_MAX_STALENESS_MS,
    fetchDeadlineMs: config.HCP_PDP_FETCH_DEADLINE_MS,
    protocolVersions: config.HCP_PROTOCOL_VERSIONS,
    authzenToken: config.HCP_AUTHZEN_TOKEN ?? null,
  });
  return {
    close: () =>
      pdp
        .close()
        .then(() => audit.close())
        .then(() => bus.close()),
  };
});
