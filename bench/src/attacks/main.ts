import './quiet';
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseEdgeMode } from '@hcp/edge';
import { runServersScript } from '@hcp/platform/testing';
import { parseAblations } from '@hcp/policy';
import { CASES } from './cases';
import {
  ablationTable,
  categoryTable,
  describeCases,
  differences,
  modeTable,
  renderChart,
  tally,
  type SweepReport,
} from './report';
import { defaultRuns, hcpProblems, runSpec, type RunSpec } from './runner';
import { startAttackWorld, type AttackWorld } from './stack';

/**
 * `pnpm bench:attacks`: runs every attack case against the real edge in each mode (naive,
 * connection, hcp) and in hcp with each single ablation switch, restarting only the edge (and
 * the ablated decision point) between runs; prints the mode, category and ablation tables, and
 * writes the JSON and an SVG chart.
 *
 *   node bench/dist/attacks/main.js [--distributed] [--json FILE] [--svg FILE]
 *        [--runs naive,connection,hcp,hcp:<switch>,...|modes|all] [--cases <id prefix>,...]
 *        [--check] [--verbose]
 *
 * --check exits 1 unless hcp mode blocks every attack, serves every neighbour and finds every
 * denial in the audit (cases with a documented knownGap are held to that gap instead).
 */

const USAGE = `usage: bench:attacks [--distributed] [--json FILE] [--svg FILE] [--runs LIST] [--cases PREFIXES] [--check] [--verbose]`;

function parseRuns(text: string | undefined): RunSpec[] {
  if (text === undefined || text === 'all') return defaultRuns();
  if (text === 'modes') return defaultRuns().filter((r) => r.ablations.length === 0);
  return text.split(',').map((part) => {
    const [mode, switches] = part.trim().split(':');
    const ablations = parseAblations(switches);
    return { label: part.trim().replace(':', '-'), mode: parseEdgeMode(mode), ablations };
  });
}

async function distributedServers(): Promise<{
  databaseUrl: string;
  natsUrl: string;
  stop: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'hcp-attacks-servers-'));
  process.stderr.write(`starting PostgreSQL and NATS with deploy/local/servers.sh in ${dir}\n`);
  const stop = async () => {
    await runServersScript('stop', dir).catch((err: unknown) =>
      process.stderr.write(`${String(err)}\n`),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await runServersScript('start', dir);
    const env: Record<string, string> = {};
    for (const line of readFileSync(join(dir, 'env'), 'utf8').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
    }
    const databaseUrl = env['HCP_DATABASE_URL'];
    const natsUrl = env['HCP_NATS_URL'];
    if (!databaseUrl || !natsUrl)
      throw new Error(`${dir}/env lacks HCP_DATABASE_URL or HCP_NATS_URL`);
    return { databaseUrl, natsUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      distributed: { type: 'boolean', default: false },
      json: { type: 'string' },
      svg: { type: 'string' },
      runs: { type: 'string' },
      cases: { type: 'string' },
      check: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stackKind = values.distributed ? 'distributed' : 'embedded';
  const results = resolve(__dirname, '..', '..', 'results');
  const jsonPath = values.json ?? join(results, `attacks-${stackKind}.json`);
  const svgPath = values.svg ?? jsonPath.replace(/\.json$/, '') + '.svg';
  const runs = parseRuns(values.runs);
  const prefixes = (values.cases ?? '').split(',').filter((p) => p !== '');
  const cases = CASES.filter(
    (c) => prefixes.length === 0 || prefixes.some((p) => c.id.startsWith(p)),
  );
  if (cases.length === 0) throw new Error(`no case matches ${values.cases}`);

  const started = Date.now();
  let servers: Awaited<ReturnType<typeof distributedServers>> | undefined;
  let world: AttackWorld | undefined;
  const report: { -readonly [K in keyof SweepReport]: SweepReport[K] } = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    stack: stackKind,
    node: process.version,
    fetchAvailable: false,
    cases: describeCases(cases),
    runs: [],
  };
  try {
    if (values.distributed) servers = await distributedServers();
    world = await startAttackWorld(
      servers === undefined
        ? { kind: 'embedded' }
        : { kind: 'distributed', databaseUrl: servers.databaseUrl, natsUrl: servers.natsUrl },
    );
    report.fetchAvailable = world.origin !== undefined;
    // CI must measure the URL cases; elsewhere they are skipped loudly.
    if (world.origin === undefined && values.check && process.env['CI'] === 'true')
      throw new Error(
        'mcp-server-fetch is not installed (scripts/install-fetch-provider.sh); CI runs the URL cases',
      );
    if (world.origin === undefined)
      process.stderr.write(
        '!!! mcp-server-fetch is not installed: the URL cases are skipped (scripts/install-fetch-provider.sh)\n',
      );
    const collected: SweepReport['runs'][number][] = [];
    for (const spec of runs) {
      const t0 = Date.now();
      const rs = await runSpec(world, spec, cases, (r) => {
        if (values.verbose)
          process.stderr.write(
            `  ${spec.label} ${r.id}: ${!r.applicable ? 'n/a' : r.blocked ? 'blocked' : r.attackSucceeded ? 'SUCCEEDED' : 'error'}` +
              ` neighbour=${r.neighbourServed} audit=${r.auditComplete}${r.error === undefined ? '' : ` ${r.error}`}\n`,
          );
      });
      const t = tally(rs, () => true);
      process.stderr.write(
        `${spec.label.padEnd(24)} ${t.blocked}/${t.total} blocked, ${t.neighboursServed} neighbours served, ${t.auditComplete} audited (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`,
      );
      collected.push({
        label: spec.label,
        mode: spec.mode,
        ablations: spec.ablations,
        durationMs: Date.now() - t0,
        results: rs,
      });
    }
    report.runs = collected;
  } finally {
    await world?.close();
    await servers?.stop();
  }
  report.durationMs = Date.now() - started;

  const core = cases.filter((c) => c.core !== undefined).length;
  const out = [
    `\nAttack benchmark — ${stackKind} stack, ${core} core + ${cases.length - core} extended cases, ` +
      `${report.runs.length} runs in ${(report.durationMs / 1000).toFixed(0)} s (Node ${process.version})\n`,
    '## Modes, ten core cases\n',
    modeTable(report),
    '\n## Extended corpus per category (blocked/cases · neighbours served · audit complete)\n',
    categoryTable(report),
  ];
  if (report.runs.some((r) => r.ablations.length > 0))
    out.push('\n## Ablations (hcp with one switch off, against full hcp)\n', ablationTable(report));
  const diffs = differences(report);
  if (diffs.length > 0)
    out.push('\n## Where we differ from the paper\n', ...diffs.map((d) => `- ${d}`));
  const gaps = cases.filter((c) => c.knownGap !== undefined);
  if (gaps.length > 0)
    out.push(
      '\n## Known gaps of hcp mode\n',
      ...gaps.map((c) => `- ${c.id} (${c.knownGap!.what}): ${c.knownGap!.why}`),
    );
  process.stdout.write(`${out.join('\n')}\n`);

  write(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  write(svgPath, `${renderChart(report)}\n`);
  process.stdout.write(`\nwrote ${jsonPath} and ${svgPath}\n`);

  if (values.check) {
    const hcp = report.runs.find((r) => r.mode === 'hcp' && r.ablations.length === 0);
    const problems = hcp === undefined ? ['no hcp run'] : hcpProblems(hcp.results);
    if (problems.length > 0) {
      process.stderr.write(
        `\nhcp mode misses the bar:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
      );
      return 1;
    }
    process.stderr.write(
      '\nhcp mode: every attack blocked, every neighbour served, every denial audited.\n',
    );
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
