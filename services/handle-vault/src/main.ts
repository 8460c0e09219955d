import 'reflect-metadata';
import {
  createAuditPublisher,
  createLogger,
  InProcessBus,
  NatsBus,
  runService,
  type EventBus,
} from '@hcp/platform';
import { databaseConfigOf, keyringOf, limitsOf, loadHandleVaultConfig } from './config';
import { startHandleVault } from './index';

// Distributed entry point: one process, configured from the environment, stopped by SIGTERM/SIGINT.
const log = createLogger('handle-vault.main');

async function connectBus(natsUrl: string | undefined): Promise<EventBus> {
  if (natsUrl !== undefined) return NatsBus.connect({ servers: natsUrl, name: 'hcp-handle-vault' });
  // Without NATS the audit entries of peeks and pipes reach no audit-log: fine for a lone local
  // run, wrong for the distributed mode, hence the loud warning.
  log.warn(
    'HCP_NATS_URL is not set: vault audit entries stay in this process; audit-log will not see them',
  );
  return new InProcessBus();
}

runService('handle-vault', async () => {
  const config = loadHandleVaultConfig();
  const keys = keyringOf(config);
  const bus = await connectBus(config.HCP_NATS_URL);
  const audit = await createAuditPublisher(bus, { source: 'handle-vault' });
  const vault = await startHandleVault({
    db: databaseConfigOf(config),
    audit,
    keys,
    host: config.HCP_VAULT_HOST,
    port: config.HCP_VAULT_PORT,
    limits: limitsOf(config),
    sweepIntervalMs: config.HCP_VAULT_SWEEP_INTERVAL_MS,
    drainTimeoutMs: config.HCP_VAULT_DRAIN_MS,
  });
  // Key ids only; the keyring prints no key material.
  log.info({ url: vault.url, bus: bus.kind, keyring: keys.toJSON() }, 'handle-vault ready');
  return {
    close: () =>
      vault
        .close()
        .then(() => audit.close())
        .then(() => bus.close()),
  };
});
