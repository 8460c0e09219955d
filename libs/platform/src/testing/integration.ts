import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';
import { openDatabase, type Database } from '../db/database';

/**
 * Set by the integration tier's global setup when PostgreSQL/NATS could not be
 * started outside CI; its value is the reason. describeIntegration reads it.
 */
export const INTEGRATION_SKIP_ENV = 'HCP_INTEGRATION_SKIP';

/** deploy/local/servers.sh, resolved from this file (same depth in src/ and dist/). */
export const SERVERS_SCRIPT: string = path.resolve(
  __dirname,
  '../../../../deploy/local/servers.sh',
);

/** Where the integration tier's servers are; read from the environment the global setup filled. */
export interface IntegrationEnv {
  readonly databaseUrl: string;
  readonly natsUrl: string;
  readonly serversDir: string;
}

/** True when the integration servers are unavailable and the suites must skip. */
export function integrationSkipped(): boolean {
  const v = process.env[INTEGRATION_SKIP_ENV];
  return v !== undefined && v !== '';
}

/**
 * describe() for suites that need the real servers: becomes describe.skip when
 * the global setup could not start them (never under CI, where it fails hard).
 */
export function describeIntegration(name: string, fn: () => void): void {
  if (integrationSkipped())
    describe.skip(`${name} (skipped: ${process.env[INTEGRATION_SKIP_ENV]})`, fn);
  else describe(name, fn);
}

/** The running servers' addresses; throws when the global setup did not provide them. */
export function integrationEnv(): IntegrationEnv {
  const databaseUrl = process.env['HCP_DATABASE_URL'];
  const natsUrl = process.env['HCP_NATS_URL'];
  const serversDir = process.env['HCP_SERVERS_DIR'];
  if (!databaseUrl || !natsUrl || !serversDir)
    throw new Error(
      'HCP_DATABASE_URL, HCP_NATS_URL and HCP_SERVERS_DIR must be set (run with jest -c jest.integration.config.js)',
    );
  return { databaseUrl, natsUrl, serversDir };
}

/** Runs `servers.sh <command> <dir>`; resolves with its log, rejects with it on failure. */
export function runServersScript(command: string, dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [SERVERS_SCRIPT, command, dir],
      { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const out = `${stdout}${stderr}`;
        if (err) reject(new Error(`servers.sh ${command} failed: ${err.message}\n${out}`));
        else resolve(out);
      },
    );
  });
}

/** Stops and starts nats-server on the same port and JetStream store (reconnect tests). */
export async function restartNats(): Promise<void> {
  await runServersScript('restart-nats', integrationEnv().serversDir);
}

/** A database of its own on the integration PostgreSQL server, dropped afterwards. */
export interface ScratchDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates an empty database next to the one in `url` (the role has CREATEDB), so suites never share tables. */
export async function createScratchDatabase(url: string): Promise<ScratchDatabase> {
  const name = `hcp_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.toString(),
    drop: async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Opens kysely on a fresh scratch database; closing also drops it. */
export async function openScratchPostgres<DB>(url: string): Promise<Database<DB>> {
  const scratch = await createScratchDatabase(url);
  const db = await openDatabase<DB>({ kind: 'postgres', url: scratch.url });
  return {
    ...db,
    close: async () => {
      await db.close();
      await scratch.drop();
    },
  };
}
