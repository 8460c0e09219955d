import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time per process group, read from /proc (Linux only), for a phase of the benchmark:
 * snapshot before, snapshot after, difference per group, divided by the calls made.
 *
 * Each process counts utime + stime + cutime + cstime (fields 14–17 of /proc/<pid>/stat, in
 * clock ticks). A group's CPU over a phase is the sum over its members after minus the sum over
 * its members before, where members are the group's root processes and all their descendants at
 * that moment. Counting the children's fields too makes this exact for processes that start or
 * end inside the phase (e.g. a PostgreSQL backend for a new connection): a member that exits is
 * reaped by its parent, whose cutime/cstime then carry the child's whole total, and its share
 * from before the phase is subtracted because it was a member before.
 */

/** The fields of one /proc/<pid>/stat line we use. */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly ppid: number;
  /** utime + stime: this process's own CPU (all its threads), clock ticks. */
  readonly ownTicks: number;
  /** cutime + cstime: CPU of its children that it has waited for, clock ticks. */
  readonly childTicks: number;
}

/**
 * Parses one /proc/<pid>/stat line. comm (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields after it are split after the LAST ')'. Null if the line
 * is not a stat line.
 */
export function parseProcStat(line: string): ProcStat | null {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open <= 0 || close < open) return null;
  const pid = Number(line.slice(0, open).trim());
  const comm = line.slice(open + 1, close);
  // After comm: state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10)
  // cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15) cutime(16) cstime(17) ...
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  if (rest.length < 15) return null;
  const n = (field: number) => Number(rest[field - 3]);
  const [ppid, utime, stime, cutime, cstime] = [n(4), n(14), n(15), n(16), n(17)];
  if (![pid, ppid, utime, stime, cutime, cstime].every(Number.isInteger)) return null;
  return { pid, comm, ppid, ownTicks: utime + stime, childTicks: cutime + cstime };
}

/** Every process's stat and command line at one moment (pid → entry). */
export type ProcTable = ReadonlyMap<number, ProcStat & { readonly cmdline: string }>;

/** Whether this platform has /proc/<pid>/stat in the Linux format; null if so, else why not. */
export function procUnavailable(): string | null {
  if (process.platform !== 'linux') return `not measured: ${process.platform} has no Linux /proc`;
  try {
    if (parseProcStat(readFileSync('/proc/self/stat', 'utf8')) === null)
      return 'not measured: /proc/self/stat is not in the expected format';
  } catch (err: unknown) {
    return `not measured: /proc unreadable (${String(err)})`;
  }
  return null;
}

/** Clock ticks per second (`getconf CLK_TCK`, read once); 100 if getconf is missing. */
let clkTck: number | undefined;
export function clockTicksPerSecond(): number {
  if (clkTck !== undefined) return clkTck;
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    clkTck = Number.isInteger(v) && v > 0 ? v : 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** Reads every process in /proc (those that vanish while being read are skipped). */
export function readProcTable(): ProcTable {
  const table = new Map<number, ProcStat & { cmdline: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = parseProcStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (st === null) continue;
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        // kernel threads, or gone: comm is enough
      }
      table.set(st.pid, { ...st, cmdline });
    } catch {
      // exited between readdir and read
    }
  }
  return table;
}

/** A group root: this process and, unless `classify` moves them, all its descendants. */
export interface GroupRoot {
  readonly group: string;
  readonly pid: number;
  /**
   * Names the group of a process in this root's subtree by its command line, or undefined to
   * inherit its parent's (e.g. run.sh's children: one group per service's main.js).
   */
  readonly classify?: (cmdline: string, comm: string) => string | undefined;
}

/** Each group's members (pid → group) at one moment: the roots' subtrees. */
export function assignGroups(table: ProcTable, roots: readonly GroupRoot[]): Map<number, string> {
  const children = new Map<number, number[]>();
  for (const p of table.values()) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out = new Map<number, string>();
  for (const r of roots) {
    if (!table.has(r.pid) || out.has(r.pid)) continue;
    const stack: { pid: number; group: string }[] = [{ pid: r.pid, group: r.group }];
    while (stack.length > 0) {
      const { pid, group: inherited } = stack.pop()!;
      if (out.has(pid)) continue; // a pid under two roots counts once, first root wins
      const p = table.get(pid);
      if (p === undefined) continue;
      const group = r.classify?.(p.cmdline, p.comm) ?? inherited;
      out.set(pid, group);
      for (const c of children.get(pid) ?? []) stack.push({ pid: c, group });
    }
  }
  return out;
}

/** One snapshot: per group, the summed ticks (own + reaped children) and how many processes. */
export interface CpuSnapshot {
  readonly atMs: number;
  readonly groups: Readonly<Record<string, { ticks: number; processes: number }>>;
}

/** Sums ticks per group over a table. */
export function snapshotOf(
  table: ProcTable,
  roots: readonly GroupRoot[],
  atMs: number,
): CpuSnapshot {
  const groups: Record<string, { ticks: number; processes: number }> = {};
  for (const r of roots) groups[r.group] ??= { ticks: 0, processes: 0 };
  for (const [pid, group] of assignGroups(table, roots)) {
    const p = table.get(pid)!;
    const g = (groups[group] ??= { ticks: 0, processes: 0 });
    g.ticks += p.ownTicks + p.childTicks;
    g.processes++;
  }
  return { atMs, groups };
}

/** Reads /proc now and sums per group. */
export function takeSnapshot(roots: readonly GroupRoot[]): CpuSnapshot {
  return snapshotOf(readProcTable(), roots, Date.now());
}

/** CPU of one group over one phase. */
export interface GroupCpu {
  readonly group: string;
  /** Clock ticks between the two snapshots. */
  readonly ticks: number;
  /** The idle background (from the baseline) over the same wall time, clock ticks. */
  readonly idleTicks: number;
  /** (ticks − idleTicks) per call, microseconds. */
  readonly usPerCall: number;
  /** Processes in the group at the end of the phase. */
  readonly processes: number;
}

/** A phase's CPU per call, by group and in total. */
export interface PhaseCpu {
  readonly op: string;
  readonly calls: number;
  readonly wallMs: number;
  readonly groups: readonly GroupCpu[];
  /** Sum over every group, µs per call (idle background subtracted). */
  readonly totalUsPerCall: number;
  /** One clock tick per call, µs: a single process's figure is exact only to about this. */
  readonly resolutionUsPerCall: number;
}

/** Ticks per second of each group while nothing runs (the baseline window). */
export type IdleRates = Readonly<Record<string, number>>;

/** The idle rate of each group between two snapshots taken with nothing running. */
export function idleRates(before: CpuSnapshot, after: CpuSnapshot): IdleRates {
  const s = (after.atMs - before.atMs) / 1000;
  const out: Record<string, number> = {};
  for (const [g, a] of Object.entries(after.groups))
    out[g] = s > 0 ? (a.ticks - (before.groups[g]?.ticks ?? 0)) / s : 0;
  return out;
}

/**
 * Per-call CPU of a phase: per group, (ticks after − ticks before − idle rate × wall time) ×
 * 1e6 / clkTck / calls. Groups keep the order of `after`. The idle correction is not clamped:
 * a small negative figure is noise at the resolution and is shown as such.
 */
export function phaseCpu(
  op: string,
  calls: number,
  before: CpuSnapshot,
  after: CpuSnapshot,
  clkTck: number,
  idle: IdleRates = {},
): PhaseCpu {
  const wallMs = after.atMs - before.atMs;
  const usPerTick = 1e6 / clkTck;
  const groups = Object.entries(after.groups).map(([group, a]) => {
    const ticks = a.ticks - (before.groups[group]?.ticks ?? 0);
    const idleTicks = (idle[group] ?? 0) * (wallMs / 1000);
    return {
      group,
      ticks,
      idleTicks,
      usPerCall: calls > 0 ? ((ticks - idleTicks) * usPerTick) / calls : NaN,
      processes: a.processes,
    };
  });
  return {
    op,
    calls,
    wallMs,
    groups,
    totalUsPerCall: groups.reduce((t, g) => t + g.usPerCall, 0),
    resolutionUsPerCall: calls > 0 ? usPerTick / calls : NaN,
  };
}

/** Sum of the named groups' µs per call in a phase (missing groups count 0). */
export function usPerCallOf(p: PhaseCpu, groups: readonly string[]): number {
  return p.groups.filter((g) => groups.includes(g.group)).reduce((t, g) => t + g.usPerCall, 0);
}
