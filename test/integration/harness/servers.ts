// Shared by the integration tier's global setup and teardown. They run in jest's
// parent process outside the module registry (no moduleNameMapper), so this file
// imports nothing from @hcp/*.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** deploy/local/servers.sh */
export const SERVERS_SCRIPT = resolve(__dirname, '../../../deploy/local/servers.sh');
/** Set when the servers could not be started (outside CI): describeIntegration skips. */
export const SKIP_ENV = 'HCP_INTEGRATION_SKIP';
/** The state dir this run started (and so must stop); unset when servers came from outside. */
export const OWNED_DIR_ENV = 'HCP_INTEGRATION_OWNED_DIR';

/** Runs servers.sh; its log goes to stderr so a failure shows what happened. */
export function servers(command: 'start' | 'stop', dir: string): void {
  execFileSync('bash', [SERVERS_SCRIPT, command, dir], {
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 900_000,
  });
}

/** Reads `<dir>/env` (KEY=value lines). */
export function readEnvFile(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(dir, 'env'), 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
