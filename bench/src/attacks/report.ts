import type { EdgeMode } from '@hcp/edge';
import type { AblationSwitch } from '@hcp/policy';
import { CATEGORIES, CORE_CLASSES, type AttackCase, type Category, type CoreClass } from './cases';
import type { CaseResult } from './runner';

/** Everything one sweep produced; the JSON file is this object. */
export interface SweepReport {
  readonly startedAt: string;
  readonly durationMs: number;
  readonly stack: 'embedded' | 'distributed';
  readonly node: string;
  readonly fetchAvailable: boolean;
  readonly cases: readonly {
    readonly id: string;
    readonly core?: CoreClass;
    readonly category: Category;
    readonly title: string;
    readonly success: string;
    readonly neighbour: string;
    readonly knownGap?: AttackCase['knownGap'];
  }[];
  readonly runs: readonly {
    readonly label: string;
    readonly mode: EdgeMode;
    readonly ablations: readonly AblationSwitch[];
    readonly durationMs: number;
    readonly results: readonly CaseResult[];
  }[];
}

/** The case metadata the JSON carries. */
export function describeCases(cases: readonly AttackCase[]): SweepReport['cases'] {
  return cases.map((c) => ({
    id: c.id,
    ...(c.core === undefined ? {} : { core: c.core }),
    category: c.category,
    title: c.title,
    success: c.success,
    neighbour: c.neighbourTitle,
    ...(c.knownGap === undefined ? {} : { knownGap: c.knownGap }),
  }));
}

/** Counts over a set of case results. */
export interface Tally {
  /** Cases that ran (applicable) in this run. */
  readonly total: number;
  readonly blocked: number;
  readonly neighboursServed: number;
  /** Blocked and neighbour served: what a runtime must do to pass a case. */
  readonly passed: number;
  readonly auditComplete: number;
}

/** Tallies the applicable results that `keep` selects. */
export function tally(results: readonly CaseResult[], keep: (r: CaseResult) => boolean): Tally {
  const rs = results.filter((r) => r.applicable && keep(r));
  return {
    total: rs.length,
    blocked: rs.filter((r) => r.blocked).length,
    neighboursServed: rs.filter((r) => r.neighbourServed).length,
    passed: rs.filter((r) => r.blocked && r.neighbourServed).length,
    auditComplete: rs.filter((r) => r.auditComplete).length,
  };
}

/** The paper's figures (10 core cases) the tables are compared with. */
export const PAPER = {
  modes: {
    naive: { blocked: 0, audit: 0 },
    connection: { blocked: 4, audit: 0 },
    hcp: { blocked: 10, audit: 10 },
  } as Record<EdgeMode, { blocked: number; audit: number }>,
  ablations: {
    grant_matching: 6,
    approval_gate: 2,
    handle_owner: 1,
    pipe_target_policy: 1,
    init_check: 2,
    version_check: 2,
  } as Partial<Record<AblationSwitch, number>>,
};

const BASELINE: Record<EdgeMode, string> = { naive: 'B0', connection: 'B1', hcp: 'B2' };
const CLASS_SHORT: Record<CoreClass, string> = {
  tool_poisoning: 'tool poisoning',
  confused_deputy: 'confused deputy',
  approval_fatigue: 'approval fatigue',
  context_poisoning: 'context poisoning',
  transport_session: 'transport/session',
};

/** One ablation row: what switching one boundary off re-exposed, against full hcp. */
export interface AblationRow {
  readonly ablation: AblationSwitch;
  readonly coreReExposed: readonly string[];
  readonly extendedReExposed: readonly string[];
  readonly neighboursLost: readonly string[];
  readonly paper: number | undefined;
}

/** Compares each single-ablation run with the full hcp run. */
export function ablationRows(report: SweepReport): AblationRow[] {
  const base = report.runs.find((r) => r.mode === 'hcp' && r.ablations.length === 0);
  if (base === undefined) return [];
  const baseOf = new Map(base.results.map((r) => [r.id, r]));
  return report.runs
    .filter((r) => r.mode === 'hcp' && r.ablations.length === 1)
    .map((run) => {
      const ablation = run.ablations[0]!;
      const exposed = run.results.filter(
        (r) => r.applicable && r.attackSucceeded && baseOf.get(r.id)?.blocked === true,
      );
      return {
        ablation,
        coreReExposed: exposed.filter((r) => r.core !== undefined).map((r) => r.id),
        extendedReExposed: exposed.filter((r) => r.core === undefined).map((r) => r.id),
        neighboursLost: run.results
          .filter((r) => r.applicable && !r.neighbourServed && baseOf.get(r.id)?.neighbourServed)
          .map((r) => r.id),
        paper: PAPER.ablations[ablation],
      };
    });
}

const modeRuns = (report: SweepReport) => report.runs.filter((r) => r.ablations.length === 0);

/** The mode table over the ten core cases, as Markdown. */
export function modeTable(report: SweepReport): string {
  const lines = [
    '| mode | attacks blocked | neighbours served | cases passed | audit complete | ' +
      CORE_CLASSES.map((c) => CLASS_SHORT[c]).join(' | ') +
      ' | paper: blocked / audit |',
    `|---|---|---|---|---|${CORE_CLASSES.map(() => '---').join('|')}|---|`,
  ];
  for (const run of modeRuns(report)) {
    const all = tally(run.results, (r) => r.core !== undefined);
    const per = CORE_CLASSES.map((c) => {
      const t = tally(run.results, (r) => r.core === c);
      return `${t.blocked}/${t.total}`;
    });
    const paper = PAPER.modes[run.mode];
    lines.push(
      `| ${BASELINE[run.mode]} ${run.mode} | ${all.blocked}/${all.total} | ${all.neighboursServed}/${all.total} | ` +
        `${all.passed}/${all.total} | ${all.auditComplete}/${all.total} | ${per.join(' | ')} | ` +
        `${paper.blocked}/10 / ${paper.audit}/10 |`,
    );
  }
  return lines.join('\n');
}

/** The extended corpus per category and mode (blocked / neighbours served / audit complete), as Markdown. */
export function categoryTable(report: SweepReport): string {
  const runs = modeRuns(report);
  const lines = [
    `| category (extended corpus) | cases | ${runs.map((r) => `${BASELINE[r.mode]} ${r.mode}`).join(' | ')} |`,
    `|---|---|${runs.map(() => '---').join('|')}|`,
  ];
  const cell = (t: Tally) =>
    t.total === 0 ? 'n/a' : `${t.blocked}/${t.total} · ${t.neighboursServed} · ${t.auditComplete}`;
  type Keep = (r: { readonly core?: CoreClass; readonly category: Category }) => boolean;
  const rows: [string, Keep][] = [
    ...CATEGORIES.map((c): [string, Keep] => [
      c.replace(/_/g, ' '),
      (r) => r.core === undefined && r.category === c,
    ]),
    ['**all extended**', (r) => r.core === undefined],
  ];
  for (const [name, keep] of rows) {
    const count = report.cases.filter(keep).length;
    if (count === 0) continue;
    lines.push(
      `| ${name} | ${count} | ${runs.map((r) => cell(tally(r.results, keep))).join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** The ablation table, as Markdown. */
export function ablationTable(report: SweepReport): string {
  const lines = [
    '| switched off | core re-exposed | paper | which core cases | extended re-exposed | neighbours lost |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of ablationRows(report)) {
    lines.push(
      `| ${row.ablation} | ${row.coreReExposed.length} | ${row.paper ?? '—'} | ` +
        `${row.coreReExposed.join(', ') || '—'} | ${row.extendedReExposed.length}` +
        `${row.extendedReExposed.length > 0 ? ` (${row.extendedReExposed.join(', ')})` : ''} | ` +
        `${row.neighboursLost.join(', ') || 'none'} |`,
    );
  }
  return lines.join('\n');
}

/** Where our figures differ from the paper's, each with the reason (computed rows, fixed reasons). */
export function differences(report: SweepReport): string[] {
  const out: string[] = [];
  // The paper's figures are over its ten cases: a slice of the corpus is not comparable.
  if (report.cases.filter((c) => c.core !== undefined).length !== 10) return out;
  for (const run of modeRuns(report)) {
    const t = tally(run.results, (r) => r.core !== undefined);
    const paper = PAPER.modes[run.mode];
    if (t.blocked !== paper.blocked || t.auditComplete !== paper.audit)
      out.push(
        `${BASELINE[run.mode]} ${run.mode}: blocks ${t.blocked}/10 with ${t.auditComplete} audited ` +
          `(paper ${paper.blocked}/10, ${paper.audit}). ${MODE_REASONS[run.mode]}`,
      );
  }
  for (const row of ablationRows(report)) {
    if (row.paper !== undefined && row.paper !== row.coreReExposed.length)
      out.push(
        `${row.ablation}: re-exposes ${row.coreReExposed.length} core case(s) (paper ${row.paper}). ${ABLATION_REASONS[row.ablation] ?? ''}`,
      );
  }
  return out;
}

const MODE_REASONS: Record<EdgeMode, string> = {
  naive: '',
  connection:
    "Our B1 stops what its linter recognises (the <IMPORTANT> tag of the poisoned helper, which also hides the tool, so that case's neighbour is lost) and what session presence stops (a call before initialize); " +
    "its per-call prompt is answered by the agent's own client, so it stops none of the approval, grant or data-flow cases, and the rug-pull text carries no marker the linter knows. " +
    "Its protocol refusals go through the edge's own protocol layer, which records them, hence audited refusals where the paper has none.",
  hcp: '',
};

const ABLATION_REASONS: Partial<Record<AblationSwitch, string>> = {
  grant_matching:
    'Only the two confused-deputy cases end at grant matching here; approvals, pinning, the pipe target policy and session checks stop the other core cases even with grants off. The paper does not list its cases, so which of its six lean on grants alone cannot be compared case by case.',
  approval_gate: '',
  handle_owner:
    'The handle vault checks ownership itself on peek, describe and resolve, so the engine switch alone re-exposes no handle theft at the edge (defence in depth), and no core case moves handles between principals.',
  pipe_target_policy:
    "Three core cases end in a pipe: the poisoned helper's exfiltration and both context-poisoning cases; the pipe target policy (with its data-flow label rule) is their last boundary.",
  init_check:
    'Our two transport/session core cases are a session hijack (session_binding) and a call before initialize (init_check); each switch re-exposes the one that is its own.',
  version_check:
    'No core case uses a version mismatch; the extended corpus has one (proto.version_mismatch), which this switch re-exposes.',
};

/** A small SVG: core results per mode (left) and cases re-exposed per ablation switch (right). */
export function renderChart(report: SweepReport): string {
  const W = 960;
  const H = 460;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="20" y="26" font-size="15" font-weight="bold">Attack benchmark (${report.stack}): ten core cases per mode, and what each ablation re-exposes</text>`,
  ];
  // Left: grouped bars per mode, out of 10.
  const series: [keyof Tally, string, string][] = [
    ['blocked', 'attacks blocked', '#d62728'],
    ['neighboursServed', 'neighbours served', '#2ca02c'],
    ['auditComplete', 'audit complete', '#1f77b4'],
  ];
  const lx = 60;
  const ly = 60;
  const lw = 360;
  const lh = 300;
  const y = (v: number) => ly + lh - (v / 10) * lh;
  for (let v = 0; v <= 10; v += 2) {
    out.push(
      `<line x1="${lx}" x2="${lx + lw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${lx - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  const runs = modeRuns(report);
  const group = lw / Math.max(runs.length, 1);
  const bar = (group - 30) / series.length;
  runs.forEach((run, i) => {
    const t = tally(run.results, (r) => r.core !== undefined);
    const gx = lx + i * group + 15;
    series.forEach(([key, , color], j) => {
      const v = t[key];
      out.push(
        `<rect x="${gx + j * bar}" y="${y(v)}" width="${bar - 2}" height="${ly + lh - y(v)}" fill="${color}"><title>${BASELINE[run.mode]} ${key}: ${v}/10</title></rect>`,
        `<text x="${gx + j * bar + bar / 2 - 1}" y="${y(v) - 4}" text-anchor="middle" font-size="10">${v}</text>`,
      );
    });
    const paper = PAPER.modes[run.mode];
    // The paper's "blocked" and "audit complete" as black ticks over our bars.
    for (const [j, v] of [
      [0, paper.blocked],
      [2, paper.audit],
    ] as const)
      out.push(
        `<line x1="${gx + j * bar - 2}" x2="${gx + j * bar + bar}" y1="${y(v)}" y2="${y(v)}" stroke="black" stroke-width="3"/>`,
      );
    out.push(
      `<text x="${gx + (series.length * bar) / 2}" y="${ly + lh + 18}" text-anchor="middle">${BASELINE[run.mode]} ${run.mode}</text>`,
    );
  });
  series.forEach(([, label, color], j) => {
    out.push(
      `<rect x="${lx + j * 125}" y="${ly + lh + 34}" width="10" height="10" fill="${color}"/>`,
      `<text x="${lx + j * 125 + 14}" y="${ly + lh + 43}">${label}</text>`,
    );
  });
  out.push(
    `<line x1="${lx}" x2="${lx + 16}" y1="${ly + lh + 62}" y2="${ly + lh + 62}" stroke="black" stroke-width="3"/>`,
    `<text x="${lx + 22}" y="${ly + lh + 66}">paper (blocked, audit complete)</text>`,
  );
  // Right: horizontal bars per ablation switch.
  const rows = ablationRows(report);
  const rx = 640;
  const ry = 60;
  const rw = 280;
  const rowH = rows.length === 0 ? 20 : Math.min(30, 330 / rows.length);
  const maxV = Math.max(
    10,
    ...rows.map((r) => r.coreReExposed.length + r.extendedReExposed.length),
  );
  const x = (v: number) => rx + (v / maxV) * rw;
  out.push(
    `<text x="${rx}" y="${ry - 12}" font-weight="bold">cases re-exposed with one switch off</text>`,
  );
  rows.forEach((row, i) => {
    const top = ry + i * rowH;
    const core = row.coreReExposed.length;
    const ext = row.extendedReExposed.length;
    out.push(
      `<text x="${rx - 6}" y="${top + rowH / 2 + 4}" text-anchor="end">${row.ablation}</text>`,
      `<rect x="${rx}" y="${top + 3}" width="${x(core) - rx}" height="${rowH - 6}" fill="#d62728"><title>core: ${row.coreReExposed.join(', ') || 'none'}</title></rect>`,
      `<rect x="${x(core)}" y="${top + 3}" width="${x(core + ext) - x(core)}" height="${rowH - 6}" fill="#f4a6a6"><title>extended: ${row.extendedReExposed.join(', ') || 'none'}</title></rect>`,
      `<text x="${Math.max(x(core + ext), row.paper === undefined ? 0 : x(row.paper)) + 6}" y="${top + rowH / 2 + 4}" font-size="10">${core} + ${ext}</text>`,
    );
    if (row.paper !== undefined)
      out.push(
        `<line x1="${x(row.paper)}" x2="${x(row.paper)}" y1="${top + 1}" y2="${top + rowH - 1}" stroke="black" stroke-width="3"/>`,
      );
  });
  const legendY = ry + rows.length * rowH + 16;
  out.push(
    `<rect x="${rx}" y="${legendY}" width="10" height="10" fill="#d62728"/><text x="${rx + 14}" y="${legendY + 9}">core</text>`,
    `<rect x="${rx + 60}" y="${legendY}" width="10" height="10" fill="#f4a6a6"/><text x="${rx + 74}" y="${legendY + 9}">extended</text>`,
    `<line x1="${rx + 150}" x2="${rx + 150}" y1="${legendY}" y2="${legendY + 10}" stroke="black" stroke-width="3"/><text x="${rx + 156}" y="${legendY + 9}">paper (core)</text>`,
    '</svg>',
  );
  return out.join('\n');
}
