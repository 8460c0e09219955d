import 'reflect-metadata';
import {
  createAuditPublisher,
  createLogger,
  InProcessBus,
  NatsBus,
  runService,
  type EventBus,
} from '@hcp/platform';
import {
  approvalLifetimesOf,
  databaseConfigOf,
  loadGrantStoreConfig,
  verifierOptionsOf,
} from './config';
import { startGrantStore } from './index';

// Distributed entry point: one process, configured from the environment, stopped by SIGTERM/SIGINT.
const log = createLogger('grant-store.main');

async function connectBus(natsUrl: string | undefined): Promise<EventBus> {
  if (natsUrl !== undefined) return NatsBus.connect({ servers: natsUrl, name: 'hcp-grant-store' });
  // Without NATS no other process hears hcp.grants.changed: a separate policy-decision then
  // learns of revocations only through its staleness bound. Fine for a lone local run, wrong
  // for the distributed mode, hence the loud warning.
  log.warn(
    'HCP_NATS_URL is not set: hcp.grants.changed stays in this process; other services will not see grant changes',
  );
  return new InProcessBus();
}

runService('grant-store', async () => {
  const config = loadGrantStoreConfig();
  const bus = await connectBus(config.HCP_NATS_URL);
  const audit = await createAuditPublisher(bus, { source: 'grant-store' });
  const verifier = verifierOptionsOf(config);
  const store = await startGrantStore({
    ...(verifier !== undefined && { verifier }),
    audit,
    db: databaseConfigOf(config),
    bus,
    host: config.HCP_GRANT_STORE_HOST,
    port: config.HCP_GRANT_STORE_PORT,
    drainTimeoutMs: config.HCP_GRANT_STORE_DRAIN_MS,
    approvalLifetimes: approvalLifetimesOf(config),
  });
  log.info(
    {
      url: store.url,
      bus: bus.kind,
      approvers: verifier !== undefined ? 'token' : 'metadata (dev)',
    },
    'grant-store ready',
  );
  return {
    close: () =>
      store
        .close()
        .then(() => audit.close())
        .then(() => bus.close()),
  };
});
