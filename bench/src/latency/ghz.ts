import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertLoopback } from './targets';

/** The ghz version docs/benchmarks.md names (go install github.com/bojand/ghz/cmd/ghz@GHZ_VERSION). */
export const GHZ_VERSION = 'v0.120.0';

/** One ghz run: a gRPC method at a constant request rate. */
export interface GhzOptions {
  readonly bin: string;
  readonly address: string;
  readonly protoRoot: string;
  /** Relative to protoRoot. */
  readonly proto: string;
  /** `package.Service.Method`. */
  readonly call: string;
  /** The request as proto3 JSON. */
  readonly data: unknown;
  readonly rps: number;
  readonly durationS: number;
  readonly concurrency: number;
  /** Requests at the start not counted (warm-up). */
  readonly skipFirst: number;
}

/** What ghz reported, in milliseconds. */
export interface GhzSummary {
  readonly count: number;
  readonly rps: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly statusCodes: Record<string, number>;
}

/** ghz's JSON report (the fields we read; its times are nanoseconds). */
interface GhzReport {
  count: number;
  total: number;
  rps: number;
  average: number;
  slowest: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution: Record<string, number> | null;
  errorDistribution: Record<string, number> | null;
}

/**
 * Reads ghz's JSON report into our summary shape. ghz's own `rps` divides only the counted
 * requests by the whole run, so with --skipFirst it under-reports; the rate here counts them all.
 */
export function parseGhzReport(json: string, skipFirst = 0): GhzSummary {
  const r = JSON.parse(json) as GhzReport;
  const at = (p: number) =>
    (r.latencyDistribution ?? []).find((d) => d.percentage === p)?.latency ?? NaN;
  const errors = Object.values(r.errorDistribution ?? {}).reduce((a, b) => a + b, 0);
  return {
    count: r.count,
    rps: r.total > 0 ? (r.count + skipFirst) / (r.total / 1e9) : r.rps,
    meanMs: r.average / 1e6,
    p50Ms: at(50) / 1e6,
    p95Ms: at(95) / 1e6,
    p99Ms: at(99) / 1e6,
    maxMs: r.slowest / 1e6,
    errors,
    statusCodes: r.statusCodeDistribution ?? {},
  };
}

/** Runs ghz once (bounded by its own duration plus a margin) and returns its summary. */
export async function runGhz(o: GhzOptions): Promise<GhzSummary> {
  assertLoopback(o.address);
  const dir = mkdtempSync(join(tmpdir(), 'hcp-ghz-'));
  try {
    const dataFile = join(dir, 'data.json');
    const outFile = join(dir, 'out.json');
    writeFileSync(dataFile, JSON.stringify(o.data));
    const args = [
      '--insecure',
      '--proto',
      join(o.protoRoot, o.proto),
      '--import-paths',
      o.protoRoot,
      '--call',
      o.call,
      '--data-file',
      dataFile,
      '--rps',
      String(o.rps),
      '--duration',
      `${o.durationS}s`,
      '--concurrency',
      String(o.concurrency),
      '--connections',
      '1',
      '--skipFirst',
      String(o.skipFirst),
      '--timeout',
      '5s',
      '--format',
      'json',
      '--output',
      outFile,
      o.address,
    ];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(o.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), (o.durationS + 30) * 1000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`ghz exited ${String(code)}: ${err.slice(0, 500)}`));
      });
    });
    return parseGhzReport(readFileSync(outFile, 'utf8'), o.skipFirst);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
