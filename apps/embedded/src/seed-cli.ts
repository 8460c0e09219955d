import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Grant } from '@hcp/core';
import { callUnary, createGrpcClient } from '@hcp/platform';
import { grantFromProto, grants } from '@hcp/proto';
import {
  createDemoSandbox,
  demoCapabilitySettings,
  demoGrants,
  filesystemProvider,
} from './demo-world';
import { seedDemoGrants } from './seed';

/**
 * `node apps/embedded/dist/seed-cli.js --sandbox <dir> [--providers-file <file>] [--grant-store <host:port>]`:
 * the demo world of `pnpm start` for the distributed stack (deploy/local/run.sh). Creates the
 * sandbox folder; with --providers-file writes the edge's providers file (HCP_EDGE_PROVIDERS_FILE:
 * the real filesystem MCP server over the sandbox); with --grant-store seeds the demo grants
 * through grant-store's gRPC API — after the edge has started, because grant-store refuses a grant
 * naming a capability its manifest does not hold yet, and the edge writes those entries. Safe to
 * run again on the same state: grants already present are not written twice.
 */
const USAGE =
  'usage: seed-cli.js --sandbox <dir> [--providers-file <file>] [--grant-store <host:port>]';

type DemoGrant = Omit<Grant, 'id' | 'createdAt' | 'revision'>;

/** Same principal, capabilities, resources and scopes: the demo grant is already there. */
function grantKey(g: DemoGrant | Grant): string {
  return JSON.stringify([
    g.principalId,
    [...g.capabilities].sort(),
    g.resourcePatterns,
    [...g.scopes].sort(),
  ]);
}

async function liveGrantKeys(grantStoreUrl: string, principals: string[]): Promise<Set<string>> {
  const client = createGrpcClient(grants.GrantStoreClient, grantStoreUrl);
  const keys = new Set<string>();
  try {
    for (const principalId of principals) {
      let pageToken = '';
      // Bounded: the demo principals hold a handful of grants.
      for (let page = 0; page < 20; page++) {
        const res = await callUnary(client.listGrants.bind(client), {
          principalId,
          includeInactive: false,
          pageSize: 1000,
          pageToken,
        });
        for (const g of res.grants) keys.add(grantKey(grantFromProto(g)));
        pageToken = res.nextPageToken;
        if (pageToken === '') break;
      }
    }
  } finally {
    client.close();
  }
  return keys;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        sandbox: { type: 'string' },
        'providers-file': { type: 'string' },
        'grant-store': { type: 'string' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const sandboxDir = values.sandbox;
  const providersFile = values['providers-file'];
  if (sandboxDir === undefined) {
    console.error(USAGE);
    return 2;
  }
  const sandbox = await createDemoSandbox(resolve(sandboxDir));
  console.log(`sandbox ${sandbox.root}`);
  if (providersFile !== undefined) {
    const file = resolve(providersFile);
    await mkdir(dirname(file), { recursive: true });
    // Exactly the HCP_EDGE_PROVIDERS_FILE shape: { providers: [{ config, capabilities }], capabilitySettings }.
    await writeFile(
      file,
      `${JSON.stringify({ providers: [filesystemProvider(sandbox)], capabilitySettings: demoCapabilitySettings(sandbox) }, null, 2)}\n`,
    );
    console.log(`providers file ${file}`);
  }

  const grantStoreUrl = values['grant-store'];
  if (grantStoreUrl !== undefined) {
    const demo = demoGrants(sandbox);
    const have = await liveGrantKeys(grantStoreUrl, [...new Set(demo.map((g) => g.principalId))]);
    const missing = demo.filter((g) => !have.has(grantKey(g)));
    const ids = await seedDemoGrants(grantStoreUrl, missing);
    console.log(
      `demo grants: ${ids.length} written, ${demo.length - missing.length} already present`,
    );
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`seed failed: ${(err as Error).message}`);
    process.exitCode = 1;
  },
);
