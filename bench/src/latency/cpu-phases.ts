import { decode } from './hdr';
import {
  clockTicksPerSecond,
  idleRates,
  phaseCpu,
  procUnavailable,
  takeSnapshot,
  usPerCallOf,
  type GroupRoot,
  type IdleRates,
  type PhaseCpu,
} from './proc-cpu';
import type { Job, JobResult } from './protocol';
import { quiesce } from './quiesce';
import type { RunningStack } from './stack';
import type { Operation } from './targets';

/**
 * The CPU target of the hot path (docs/adr/0005), measured: CPU of every process of the run (the stack's services,
 * PostgreSQL with its backends, nats-server, the floor server, the load generator) per call of
 * a closed-loop phase, from /proc. A phase is: wait for the machine to go quiet, snapshot, run
 * one operation one call at a time for `seconds`, wait for quiet again (so the audit work each
 * call leaves behind, published and written after the answer, is inside the window), snapshot.
 * The idle background of each group (measured first, with nothing running) is subtracted.
 */

/** The operations measured, the floor first. */
export const CPU_OPS = ['floor_grpc', 'decide_hit', 'edge_call'] as const;

/** The floor's groups: one empty gRPC call costs the client plus the server. */
export const FLOOR_GROUPS = ['load generator', 'floor server'] as const;

/** The hot path's targets: total CPU per call ≤ this many floor calls' CPU. */
export const CPU_TARGETS = { decide_hit: 2, edge_call: 8 } as const;

/** What goes into the JSON as `cpuPerCall`. */
export type CpuPerCall =
  | { readonly measured: false; readonly reason: string }
  | {
      readonly measured: true;
      readonly clkTck: number;
      readonly note: string;
      /** Idle background per group (ticks/s), measured before the phases, subtracted from each. */
      readonly idle: { readonly seconds: number; readonly ticksPerSecond: IdleRates };
      readonly phases: readonly PhaseCpu[];
      /** µs of CPU per empty gRPC call, client plus server (floor_grpc phase). */
      readonly floorUsPerCall: number;
      /** Total CPU per call / floorUsPerCall. */
      readonly ratios: {
        readonly decide_hit: number;
        readonly edge_call: number;
        /** The edge call without the upstream MCP server's own CPU (the tool, not HCP). */
        readonly edge_call_without_upstream: number;
      };
    };

/** A worker as main.ts has it: a pid and a job channel. */
export interface CpuWorker {
  readonly pid: number | undefined;
  send(msg: Job, timeoutMs: number): Promise<JobResult>;
}

/** Calls made in a series result: timed calls plus errors. */
export function callsOf(r: JobResult, op: string): number {
  const h = r.histograms[op];
  return (h === undefined ? 0 : decode(h).totalCount) + (r.counts[`${op}.errors`] ?? 0);
}

const NOTE =
  'CPU from /proc/<pid>/stat (utime+stime+cutime+cstime) of every process of each group and its descendants, ' +
  'snapshot before and after each closed-loop phase; the phase ends once the machine is quiet again, so work ' +
  'left behind by the calls (audit publish, ingest) is inside it; each group’s idle background is subtracted. ' +
  'Clock ticks are coarse (1/CLK_TCK s): a single process’s figure is exact only to about one tick per phase, ' +
  'i.e. resolutionUsPerCall.';

/** Runs the CPU phases (Linux only; elsewhere says why not). */
export async function runCpuPhases(o: {
  readonly stack: RunningStack;
  readonly floorPid: number | undefined;
  readonly workers: readonly CpuWorker[];
  readonly seconds: number;
  readonly quick: boolean;
  readonly log: (s: string) => void;
}): Promise<CpuPerCall> {
  const why = procUnavailable();
  if (why !== null) {
    o.log(`CPU per call: ${why}`);
    return { measured: false, reason: why };
  }
  const clkTck = clockTicksPerSecond();
  const roots = (): GroupRoot[] => [
    ...o.stack.cpuRoots(),
    ...(o.floorPid !== undefined ? [{ group: 'floor server', pid: o.floorPid }] : []),
    ...o.workers.flatMap((w) =>
      w.pid !== undefined ? [{ group: 'load generator', pid: w.pid }] : [],
    ),
  ];
  const settleMs = o.quick ? 10_000 : 60_000;
  await quiesce(0.2, settleMs);
  const idleSeconds = o.quick ? 2 : 5;
  o.log(`CPU per call: idle background over ${idleSeconds} s (clock tick ${1000 / clkTck} ms)`);
  const i0 = takeSnapshot(roots());
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const idle = idleRates(i0, takeSnapshot(roots()));
  const phases: PhaseCpu[] = [];
  const w0 = o.workers[0]!;
  for (const op of CPU_OPS as readonly Operation[]) {
    await quiesce(0.2, settleMs);
    o.log(`CPU per call: ${op}, closed loop for ${o.seconds} s`);
    const before = takeSnapshot(roots());
    const r = await w0.send(
      {
        kind: 'series',
        ops: [op],
        iterations: 1e9, // bounded by maxMs: the phase is timed, not counted
        warmup: 0,
        block: op === 'edge_call' ? 10 : 100,
        maxMs: o.seconds * 1000,
        quiesce: false,
      },
      o.seconds * 1000 + 60_000,
    );
    await quiesce(0.2, settleMs);
    const after = takeSnapshot(roots());
    phases.push(phaseCpu(op, callsOf(r, op), before, after, clkTck, idle));
  }
  const floorPhase = phases.find((p) => p.op === 'floor_grpc')!;
  const floorUsPerCall = usPerCallOf(floorPhase, FLOOR_GROUPS);
  const total = (op: string) => phases.find((p) => p.op === op)?.totalUsPerCall ?? NaN;
  const edge = phases.find((p) => p.op === 'edge_call');
  return {
    measured: true,
    clkTck,
    note: NOTE,
    idle: { seconds: idleSeconds, ticksPerSecond: idle },
    phases,
    floorUsPerCall,
    ratios: {
      decide_hit: total('decide_hit') / floorUsPerCall,
      edge_call: total('edge_call') / floorUsPerCall,
      edge_call_without_upstream:
        edge === undefined
          ? NaN
          : (edge.totalUsPerCall - usPerCallOf(edge, ['upstream MCP server'])) / floorUsPerCall,
    },
  };
}

/** The two CPU goals (met / missed / not measured), in the shape of main.ts's goals. */
export function cpuReport(c: CpuPerCall): {
  goals: { goal: string; target: string; measured: string; met: boolean | null }[];
} {
  const goal = (op: keyof typeof CPU_TARGETS, what: string) => {
    const limit = CPU_TARGETS[op];
    const text = `CPU per ${what}, all processes, within ${limit}x one empty gRPC call (client plus server)`;
    if (!c.measured) return { goal: text, target: `<= ${limit}x`, measured: c.reason, met: null };
    const r = c.ratios[op];
    return {
      goal: text,
      target: `<= ${limit}x`,
      measured: Number.isFinite(r) ? `${r.toFixed(1)}x` : 'not measured (no floor CPU)',
      met: Number.isFinite(r) ? r <= limit : null,
    };
  };
  return { goals: [goal('decide_hit', 'cache-hit Decide'), goal('edge_call', 'edge tools/call')] };
}

const us = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '—');

/** The printed table: µs of CPU per call per group for each phase, totals and ratios. */
export function formatCpuReport(c: CpuPerCall): string[] {
  if (!c.measured) return [`\nCPU per call: ${c.reason}`];
  const lines = [
    `\nCPU per call (µs, closed loop, one call in flight; /proc, clock tick ${1000 / c.clkTck} ms, idle background subtracted)`,
  ];
  const ops = c.phases.map((p) => p.op);
  lines.push(`  ${'process group'.padEnd(24)}${ops.map((o) => o.padStart(13)).join('')}`);
  const groups = [...new Set(c.phases.flatMap((p) => p.groups.map((g) => g.group)))];
  for (const g of groups)
    lines.push(
      `  ${g.padEnd(24)}${c.phases
        .map((p) => us(p.groups.find((x) => x.group === g)?.usPerCall ?? NaN).padStart(13))
        .join('')}`,
    );
  const row = (name: string, f: (p: PhaseCpu) => string) =>
    lines.push(`  ${name.padEnd(24)}${c.phases.map((p) => f(p).padStart(13)).join('')}`);
  row('total', (p) => us(p.totalUsPerCall));
  row('calls', (p) => String(p.calls));
  row('wall s', (p) => (p.wallMs / 1000).toFixed(1));
  row('± per process (1 tick)', (p) => us(p.resolutionUsPerCall));
  const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)}x` : '—');
  lines.push(
    `  floor (empty gRPC, load generator + floor server): ${us(c.floorUsPerCall)} µs per call`,
    `  ${c.ratios.decide_hit <= CPU_TARGETS.decide_hit ? '✓' : '✗'} cache-hit Decide: ${x(c.ratios.decide_hit)} the floor's CPU (target <= ${CPU_TARGETS.decide_hit}x)`,
    `  ${c.ratios.edge_call <= CPU_TARGETS.edge_call ? '✓' : '✗'} edge tools/call: ${x(c.ratios.edge_call)} the floor's CPU (target <= ${CPU_TARGETS.edge_call}x); without the upstream MCP server's own CPU ${x(c.ratios.edge_call_without_upstream)}`,
    `  resolution: one clock tick (${1000 / c.clkTck} ms) per process per phase, i.e. the "±" row per process; totals add that per process`,
  );
  return lines;
}

export function printCpuReport(c: CpuPerCall): void {
  for (const l of formatCpuReport(c)) console.log(l);
}
