import { ConfigError } from '../config/config';
import { createLogger } from '../logging/logger';
import { shutdownTelemetry, startTelemetry } from '../telemetry/telemetry';

/** What a service's start function hands back: how to stop what it started, in order. */
export interface StartedService {
  close(): Promise<void>;
}

/**
 * The entry point every distributed service shares: start telemetry, run `start`,
 * and on SIGTERM/SIGINT close in order and exit 0. A bad configuration exits 2
 * with each bad variable named; any other start failure exits 1.
 */
export function runService(name: string, start: () => Promise<StartedService>): void {
  const log = createLogger(`${name}.main`);
  let started: StartedService | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    void (started?.close() ?? Promise.resolve())
      .then(() => shutdownTelemetry())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  startTelemetry({ serviceName: `hcp-${name}` });
  start()
    .then((s) => {
      started = s;
      if (stopping) void s.close();
    })
    .catch((err: unknown) => {
      if (err instanceof ConfigError) {
        log.fatal({ problems: err.problems }, err.message);
        process.exit(2);
      }
      log.fatal({ err }, `${name} failed to start`);
      process.exit(1);
    });
}
