import { readFileSync } from 'node:fs';
import { cpuReport, formatCpuReport, type CpuPerCall } from './cpu-phases';
import {
  assignGroups,
  idleRates,
  parseProcStat,
  phaseCpu,
  procUnavailable,
  snapshotOf,
  usPerCallOf,
  type GroupRoot,
  type ProcTable,
} from './proc-cpu';
import { classifyStackProcess } from './stack';

/** A stat line as the kernel writes it, with the fields we read set (others filler). */
function statLine(
  pid: number,
  comm: string,
  ppid: number,
  utime: number,
  stime: number,
  cutime = 0,
  cstime = 0,
): string {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice threads ...
  return `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 1234 0 5 0 ${utime} ${stime} ${cutime} ${cstime} 20 0 11 0 98765 1183744000 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0`;
}

describe('parseProcStat', () => {
  it('reads pid, ppid and the tick fields of a plain line', () => {
    expect(parseProcStat(statLine(4242, 'node', 1, 150, 30, 7, 3))).toEqual({
      pid: 4242,
      comm: 'node',
      ppid: 1,
      ownTicks: 180,
      childTicks: 10,
    });
  });

  it('splits after the last ")" when comm holds spaces and parentheses', () => {
    const nasty = 'postgres: hcp (x) S 9 ) 1 2';
    const st = parseProcStat(statLine(77, nasty, 12, 40, 2, 1, 1));
    expect(st).toEqual({ pid: 77, comm: nasty, ppid: 12, ownTicks: 42, childTicks: 2 });
    expect(parseProcStat(statLine(78, ') (', 1, 5, 5))?.ownTicks).toBe(10);
    expect(parseProcStat(statLine(79, 'a b c', 1, 5, 5))?.comm).toBe('a b c');
  });

  it('accepts a trailing newline and rejects what is not a stat line', () => {
    expect(parseProcStat(statLine(5, 'nats-server', 1, 9, 1) + '\n')?.ownTicks).toBe(10);
    expect(parseProcStat('')).toBeNull();
    expect(parseProcStat('12 node S 1 2 3')).toBeNull(); // no parentheses
    expect(parseProcStat('12 (node) S 1 2 3')).toBeNull(); // too short
    expect(parseProcStat('x (node) S 1 1 1 0 -1 0 0 0 0 0 a b 0 0 20')).toBeNull();
  });

  it('reads this process on Linux', () => {
    if (procUnavailable() !== null) return; // elsewhere: "not measured"
    const st = parseProcStat(readFileSync('/proc/self/stat', 'utf8'));
    expect(st?.pid).toBe(process.pid);
    expect(st?.ppid).toBe(process.ppid);
  });
});

/** A fake /proc: pid → [ppid, own ticks, child ticks, cmdline]. */
function table(rows: Record<number, [number, number, number, string]>): ProcTable {
  return new Map(
    Object.entries(rows).map(([pid, [ppid, own, child, cmdline]]) => [
      Number(pid),
      {
        pid: Number(pid),
        comm: cmdline.split(' ')[0] ?? '',
        ppid,
        ownTicks: own,
        childTicks: child,
        cmdline,
      },
    ]),
  );
}

const ROOTS: GroupRoot[] = [
  { group: 'run.sh', pid: 10, classify: classifyStackProcess },
  { group: 'postgres', pid: 20 },
  { group: 'load generator', pid: 30 },
];

describe('process groups', () => {
  const t = table({
    1: [0, 0, 0, 'init'],
    10: [1, 1, 0, 'bash deploy/local/run.sh /tmp/s'],
    11: [10, 100, 0, 'node services/edge/dist/main.js'],
    12: [
      11,
      50,
      0,
      'node /x/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /s',
    ],
    13: [10, 70, 0, 'node services/audit-log/dist/main.js'],
    14: [13, 5, 0, 'some helper'],
    20: [1, 10, 0, 'postgres -D /tmp/pg'],
    21: [20, 30, 0, 'postgres: hcp hcp 127.0.0.1(5555) idle'],
    30: [99, 8, 0, 'node worker.js'],
    99: [1, 1000, 0, 'node main.js'], // the orchestrator: not in any group
  });

  it('takes each root with all its descendants, one group per service main.js', () => {
    const g = assignGroups(t, ROOTS);
    expect(Object.fromEntries(g)).toEqual({
      10: 'run.sh',
      11: 'edge',
      12: 'upstream MCP server',
      13: 'audit-log',
      14: 'audit-log',
      20: 'postgres',
      21: 'postgres',
      30: 'load generator',
    });
  });

  it('sums ticks per group and skips roots that are gone', () => {
    const s = snapshotOf(t, [...ROOTS, { group: 'nats-server', pid: 404 }], 0);
    expect(s.groups['postgres']).toEqual({ ticks: 40, processes: 2 });
    expect(s.groups['edge']).toEqual({ ticks: 100, processes: 1 });
    expect(s.groups['nats-server']).toEqual({ ticks: 0, processes: 0 });
  });

  it('keeps a backend that exited in the phase, through its parent’s cutime', () => {
    const before = snapshotOf(t, ROOTS, 0);
    // Backend 21 ran 12 more ticks, then exited and was reaped (postmaster cutime += 42);
    // backend 22 started and ran 5 ticks.
    const after = snapshotOf(
      table({
        20: [1, 11, 42, 'postgres -D /tmp/pg'],
        22: [20, 5, 0, 'postgres: hcp hcp 127.0.0.1(5556) idle'],
      }),
      [{ group: 'postgres', pid: 20 }],
      1000,
    );
    const p = phaseCpu('decide_hit', 100, before, after, 100);
    const pg = p.groups.find((g) => g.group === 'postgres')!;
    expect(pg.ticks).toBe(1 + 12 + 5); // postmaster 1, old backend's last 12, new backend 5
  });
});

describe('per-call arithmetic', () => {
  const before = {
    atMs: 0,
    groups: { a: { ticks: 100, processes: 1 }, b: { ticks: 0, processes: 1 } },
  };
  const after = {
    atMs: 2000,
    groups: { a: { ticks: 150, processes: 1 }, b: { ticks: 10, processes: 1 } },
  };

  it('turns ticks into µs per call at CLK_TCK 100, with one tick per call as the resolution', () => {
    const p = phaseCpu('floor_grpc', 1000, before, after, 100);
    expect(p.groups.map((g) => [g.group, g.ticks, g.usPerCall])).toEqual([
      ['a', 50, 500], // 50 ticks × 10 ms / 1000 calls
      ['b', 10, 100],
    ]);
    expect(p.totalUsPerCall).toBe(600);
    expect(p.resolutionUsPerCall).toBe(10);
    expect(p.wallMs).toBe(2000);
    expect(usPerCallOf(p, ['b', 'missing'])).toBe(100);
  });

  it('subtracts each group’s idle background over the phase’s wall time', () => {
    const idle = idleRates(
      { atMs: 0, groups: { a: { ticks: 0, processes: 1 } } },
      { atMs: 4000, groups: { a: { ticks: 8, processes: 1 } } },
    );
    expect(idle).toEqual({ a: 2 });
    const p = phaseCpu('decide_hit', 100, before, after, 1000, idle);
    // a: (50 − 2/s × 2 s) ticks × 1 ms / 100 calls
    expect(p.groups[0]).toMatchObject({ group: 'a', idleTicks: 4, usPerCall: 460 });
    expect(p.groups[1]).toMatchObject({ group: 'b', idleTicks: 0, usPerCall: 100 });
  });

  it('reports no calls as NaN, not zero', () => {
    expect(phaseCpu('edge_call', 0, before, after, 100).totalUsPerCall).toBeNaN();
  });
});

describe('CPU report', () => {
  const phase = (op: string, groups: Record<string, number>) =>
    phaseCpu(
      op,
      1000,
      {
        atMs: 0,
        groups: Object.fromEntries(Object.keys(groups).map((g) => [g, { ticks: 0, processes: 1 }])),
      },
      {
        atMs: 1000,
        groups: Object.fromEntries(
          Object.entries(groups).map(([g, t]) => [g, { ticks: t, processes: 1 }]),
        ),
      },
      100,
    );

  it('states met / missed against 2x and 8x, and "not measured" off Linux', () => {
    const c: CpuPerCall = {
      measured: true,
      clkTck: 100,
      note: '',
      idle: { seconds: 1, ticksPerSecond: {} },
      phases: [
        phase('floor_grpc', { 'load generator': 10, 'floor server': 10 }),
        phase('decide_hit', { 'load generator': 10, 'policy-decision': 20, 'audit-log': 30 }),
        phase('edge_call', { edge: 100, 'upstream MCP server': 40 }),
      ],
      floorUsPerCall: 200,
      ratios: { decide_hit: 3, edge_call: 7, edge_call_without_upstream: 5 },
    };
    expect(cpuReport(c).goals.map((g) => [g.measured, g.met])).toEqual([
      ['3.0x', false],
      ['7.0x', true],
    ]);
    const text = formatCpuReport(c).join('\n');
    expect(text).toMatch(/policy-decision\s+—\s+200\s+—/);
    expect(text).toMatch(/± per process \(1 tick\)\s+10\s+10\s+10/);
    expect(text).toContain('✗ cache-hit Decide: 3.0x');
    expect(text).toContain('✓ edge tools/call: 7.0x');
    const off: CpuPerCall = { measured: false, reason: 'not measured: darwin has no Linux /proc' };
    expect(cpuReport(off).goals.every((g) => g.met === null && g.measured === off.reason)).toBe(
      true,
    );
    expect(formatCpuReport(off).join('')).toContain('not measured');
  });
});
