import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** The parts of a V8 .cpuprofile (node --cpu-prof) we read. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where one process spent its CPU while profiled. */
export interface ProfileSummary {
  readonly file: string;
  /** Which process: `<package>-<script>` from the file name (e.g. policy-decision-main). */
  readonly process: string;
  readonly wallMs: number;
  /** Sampled time not idle. */
  readonly busyMs: number;
  /** Busy time by component (self time), largest first. */
  readonly byComponent: readonly { component: string; ms: number; share: number }[];
  /** The functions with the most self time. */
  readonly topFunctions: readonly { fn: string; component: string; ms: number; share: number }[];
  /**
   * Functions with the most inclusive time (self + callees) among HCP's own code and the
   * libraries it calls into directly: the call path, stage by stage.
   */
  readonly topInclusive: readonly { fn: string; component: string; ms: number; share: number }[];
}

/** Components whose functions are listed by inclusive time: ours, and the frameworks on the path. */
const INCLUSIVE_COMPONENTS = /^hcp |^MCP SDK$|^NestJS$|^ajv$|^jose$|^zod$|^NATS client$/;

const SPECIAL: Record<string, string> = {
  '(idle)': 'idle',
  '(program)': 'V8 / native (program)',
  '(garbage collector)': 'garbage collector',
  '(root)': 'idle',
};

/** Names the component a sampled frame belongs to, from its script URL. */
export function componentOf(functionName: string, url: string): string {
  const special = SPECIAL[functionName];
  if (special !== undefined) return special;
  if (url === '') return 'V8 / native';
  if (url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([a-z_0-9]+)/.exec(url);
    const mod = m?.[1] ?? 'core';
    if (mod === 'http2' || mod === 'http' || mod === '_http_server' || mod === '_http_common')
      return `node ${mod.replace(/^_/, '')}`;
    if (mod === 'net' || mod === 'stream_base_commons' || mod === 'streams' || mod === 'stream')
      return 'node net/streams';
    if (mod === 'crypto') return 'node crypto';
    return 'node core';
  }
  const nm = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) {
    const pkg = nm[1]!;
    if (pkg === '@grpc/grpc-js') return 'grpc-js';
    if (pkg === '@grpc/proto-loader' || pkg === 'protobufjs' || pkg === '@bufbuild/protobuf')
      return 'protobuf (de)serialisation';
    if (pkg.startsWith('@nestjs/')) return 'NestJS';
    if (pkg.startsWith('@nats-io/')) return 'NATS client';
    if (pkg.startsWith('@opentelemetry/')) return 'OpenTelemetry';
    if (pkg === 'pino' || pkg === 'sonic-boom' || pkg === 'thread-stream') return 'logging (pino)';
    if (pkg.startsWith('@modelcontextprotocol/')) return 'MCP SDK';
    return pkg;
  }
  const hcp = /\/(libs|services|apps)\/([^/]+)\/(?:dist|src)\//.exec(url);
  if (hcp) return `hcp ${hcp[2]!}`;
  return 'other';
}

/** A span of monotonic time in microseconds (process.hrtime / 1000: the clock V8 stamps samples with). */
export interface TimeWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

/** Summarises one .cpuprofile file, optionally only the samples inside `window`. */
export function summarizeProfile(file: string, window?: TimeWindow, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  const inclusiveUs = new Map<string, { component: string; us: number }>();
  const keyOf = (n: CpuProfile['nodes'][number]) => {
    const file = n.callFrame.url.replace(/^.*\/(node_modules|libs|services|apps)\//, '$1/');
    return `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
  };
  let t = p.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < p.samples.length; i++) {
    const delta = p.timeDeltas[i] ?? 0;
    t += delta;
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) continue;
    first = Math.min(first, t - delta);
    last = Math.max(last, t);
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
    // Inclusive: every distinct function on the sampled stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n === undefined || n.callFrame.url === '') continue;
      const c = componentOf(n.callFrame.functionName, n.callFrame.url);
      if (!INCLUSIVE_COMPONENTS.test(c)) continue;
      const k = keyOf(n);
      if (seen.has(k)) continue;
      seen.add(k);
      const e = inclusiveUs.get(k) ?? { component: c, us: 0 };
      e.us += delta;
      inclusiveUs.set(k, e);
    }
  }
  const components = new Map<string, number>();
  const functions = new Map<string, { component: string; us: number }>();
  let idle = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined) continue;
    total += us;
    const c = componentOf(n.callFrame.functionName, n.callFrame.url);
    if (c === 'idle') {
      idle += us;
      continue;
    }
    components.set(c, (components.get(c) ?? 0) + us);
    const key = keyOf(n);
    const f = functions.get(key) ?? { component: c, us: 0 };
    f.us += us;
    functions.set(key, f);
  }
  const busy = total - idle;
  const share = (us: number) => (busy > 0 ? us / busy : 0);
  return {
    file,
    process: basename(file).replace(/-\d+\.cpuprofile$/, ''),
    wallMs: last > first ? (last - first) / 1000 : 0,
    busyMs: busy / 1000,
    byComponent: [...components.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([component, us]) => ({ component, ms: us / 1000, share: share(us) })),
    topFunctions: [...functions.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([fn, f]) => ({ fn, component: f.component, ms: f.us / 1000, share: share(f.us) })),
    topInclusive: [...inclusiveUs.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top * 2)
      .map(([fn, f]) => ({ fn, component: f.component, ms: f.us / 1000, share: share(f.us) })),
  };
}

/** Summaries of every .cpuprofile in `dir` written by a long-running service (main.js) process. */
export function summarizeProfiles(dir: string, window?: TimeWindow): ProfileSummary[] {
  return readdirSync(dir)
    .filter((f) => /-main-\d+\.cpuprofile$/.test(f))
    .map((f) => summarizeProfile(join(dir, f), window))
    .sort((a, b) => b.busyMs - a.busyMs);
}
