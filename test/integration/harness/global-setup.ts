import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OWNED_DIR_ENV, readEnvFile, servers, SKIP_ENV } from './servers';

const EXPORTED = ['HCP_DATABASE_URL', 'HCP_NATS_URL', 'HCP_SERVERS_DIR'] as const;

/** The reason servers.sh recorded for its failure, if any. */
function lastError(dir: string | undefined): string | undefined {
  const file = dir === undefined ? undefined : join(dir, 'last-error');
  if (file === undefined || !existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

function banner(reason: string): void {
  const line = '!'.repeat(78);
  process.stderr.write(
    `\n${line}\n!!! INTEGRATION TESTS SKIPPED: could not start PostgreSQL/NATS: ${reason}\n` +
      `!!! (under CI=true this is a failure; see deploy/local/servers.sh)\n${line}\n\n`,
  );
}

/**
 * Starts PostgreSQL and NATS for the integration tier with deploy/local/servers.sh
 * in a temp dir, and exports their addresses to the tests (jest workers inherit
 * this process's environment). Reuses servers already described by
 * HCP_SERVERS_DIR (+ HCP_DATABASE_URL, HCP_NATS_URL) and then leaves them running.
 * When the servers cannot start: fails under CI=true, otherwise the suites skip.
 */
export default function globalSetup(): void {
  if (EXPORTED.every((k) => process.env[k])) {
    process.stderr.write(`\n[integration] using servers from ${process.env['HCP_SERVERS_DIR']}\n`);
    return;
  }
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'hcp-int-'));
    process.stderr.write(`\n[integration] starting PostgreSQL and NATS in ${dir}\n`);
    servers('start', dir);
    const env = readEnvFile(dir);
    for (const k of EXPORTED) {
      const v = env[k];
      if (!v) throw new Error(`${dir}/env has no ${k}`);
      process.env[k] = v;
    }
    process.env[OWNED_DIR_ENV] = dir;
    // Ctrl-C skips globalTeardown; do not leave servers behind.
    const owned = dir;
    const stopOnSignal = (signal: NodeJS.Signals) => {
      try {
        servers('stop', owned);
      } finally {
        process.kill(process.pid, signal);
      }
    };
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
  } catch (err: unknown) {
    try {
      if (dir !== undefined) servers('stop', dir);
    } catch {
      // best effort: a partial start
    }
    const reason =
      lastError(dir) ?? (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    if (process.env['CI'] === 'true') throw err;
    banner(reason);
    process.env[SKIP_ENV] = reason;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}
