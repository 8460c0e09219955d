// Put cost per call (ADR 0005 §1): wall time and this process's CPU (process.cpuUsage) per
// HandleService.put, at a given concurrency, on PGlite (default) or on the PostgreSQL server
// HCP_TEST_POSTGRES_URL names (a throwaway database; the server's own CPU is added when
// PG_PID names its postmaster and /proc is readable). Runs against dist: build first.
//
//   node services/handle-vault/bench/put-cost.mjs [--puts N] [--concurrency C] [--bytes B]
//     [--principals P] [--dist DIR]   (DIR: another build of this package, e.g. an older commit's)
import 'reflect-metadata';
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { freshDatabase } from '@hcp/platform/testing';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    puts: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '1' },
    bytes: { type: 'string', default: '1024' },
    principals: { type: 'string', default: '4' },
    dist: { type: 'string' },
  },
});
const dist =
  values.dist === undefined
    ? new URL('../dist/', import.meta.url)
    : pathToFileURL(`${values.dist}/`);
const load = (file) => import(new URL(file, dist).href);
const { HandleRepository } = await load('handle.repository.js');
const { HandleService } = await load('handle.service.js');
const { migrateHandleVault } = await load('index.js');
const { VaultKeyring } = await load('keyring.js');
const { resolveLimits } = await load('limits.js');
const puts = Number(values.puts);
const concurrency = Number(values.concurrency);
const payload = Buffer.alloc(Number(values.bytes), 'x');
const principals = Number(values.principals);

/** CPU ticks (user + system) of the postmaster and its children, or undefined. */
function serverTicks() {
  const root = process.env.PG_PID;
  if (root === undefined) return undefined;
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (pid === root || f[1] === root) total += Number(f[11]) + Number(f[12]);
  }
  return total;
}

const database = await freshDatabase({ migrate: migrateHandleVault });
const audit = { record() {}, available: () => true };
const repository = new HandleRepository(database.db);
let statements = 0;
if (typeof repository.putWithinQuota === 'function') {
  const putWithinQuota = repository.putWithinQuota.bind(repository);
  repository.putWithinQuota = (handles, max) => {
    statements++;
    return putWithinQuota(handles, max);
  };
}
// Before ADR 0005 §1 the service took the database first; either build works.
const service = new HandleService(
  ...(HandleService.length === 6 ? [database.db] : []),
  repository,
  audit,
  VaultKeyring.of({ k1: Buffer.alloc(32, 7) }, 'k1'),
  resolveLimits({ maxPrincipalBytes: 1024 * 1024 * 1024 }),
  () => Date.now(),
);
const put = (i) =>
  service.put({
    ownerPrincipalId: `agent-${i % principals}`,
    producingCapability: 'fs/read_text_file',
    labels: { provider: 'fs' },
    payload,
  });

async function run(n) {
  let next = 0;
  const worker = async () => {
    while (next < n) await put(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

await run(Math.min(200, puts)); // warm-up: JIT, prepared plans, the pool's connections
statements = 0;
const ticks0 = serverTicks();
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await run(puts);
const wallNs = Number(process.hrtime.bigint() - t0);
const cpu = process.cpuUsage(cpu0);
const ticks1 = serverTicks();
await database.close();

const perPut = (us) => Math.round((us / puts) * 10) / 10;
const result = {
  backend: process.env.HCP_TEST_POSTGRES_URL ? 'postgres' : 'pglite',
  puts,
  concurrency,
  payloadBytes: payload.length,
  wallUsPerPut: perPut(wallNs / 1000),
  nodeCpuUsPerPut: perPut(cpu.user + cpu.system),
  ...(statements > 0 && { putsPerStatement: Math.round((puts / statements) * 100) / 100 }),
  ...(ticks0 !== undefined && {
    serverCpuUsPerPut: perPut(((ticks1 - ticks0) * 1e6) / 100),
  }),
};
console.log(JSON.stringify(result));
