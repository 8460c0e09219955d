import 'reflect-metadata';
import { createLogger, NatsBus, runService } from '@hcp/platform';
import { startAuditLog } from './audit-log';
import { databaseConfigOf, loadAuditLogConfig, verifierOptionsOf } from './config';

// Distributed entry point: one process, configured from the environment, stopped by SIGTERM/SIGINT.
const log = createLogger('audit-log.main');

runService('audit-log', async () => {
  const config = loadAuditLogConfig();
  const bus = await NatsBus.connect({ servers: config.HCP_NATS_URL, name: 'hcp-audit-log' });
  try {
    const service = await startAuditLog({
      db: databaseConfigOf(config),
      bus,
      host: config.HCP_AUDIT_HOST,
      httpPort: config.HCP_AUDIT_HTTP_PORT,
      grpcPort: config.HCP_AUDIT_GRPC_PORT ?? null,
      verifier: verifierOptionsOf(config),
      ackWaitMs: config.HCP_AUDIT_ACK_WAIT_MS,
      drainTimeoutMs: config.HCP_AUDIT_DRAIN_MS,
    });
    log.info({ url: service.url, grpc: service.grpcUrl }, 'audit-log ready');
    return { close: () => service.close().then(() => bus.close()) };
  } catch (err: unknown) {
    await bus.close();
    throw err;
  }
});
