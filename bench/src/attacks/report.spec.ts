import { CASES, CORE_CLASSES } from './cases';
import {
  ablationRows,
  ablationTable,
  describeCases,
  differences,
  modeTable,
  renderChart,
  tally,
  type SweepReport,
} from './report';
import type { CaseResult } from './runner';

const core = CASES.filter((c) => c.core !== undefined);

function result(
  id: string,
  run: string,
  blocked: boolean,
  extra: Partial<CaseResult> = {},
): CaseResult {
  const c = CASES.find((x) => x.id === id)!;
  return {
    id,
    ...(c.core === undefined ? {} : { core: c.core }),
    category: c.category,
    run,
    applicable: true,
    attackSucceeded: !blocked,
    blocked,
    neighbourServed: true,
    auditComplete: blocked,
    refusals: [],
    prompts: 0,
    ms: 1,
    ...extra,
  };
}

function report(): SweepReport {
  const ids = core.map((c) => c.id);
  return {
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1,
    stack: 'embedded',
    node: 'v20',
    fetchAvailable: true,
    cases: describeCases(core),
    runs: [
      {
        label: 'naive',
        mode: 'naive',
        ablations: [],
        durationMs: 1,
        results: ids.map((id) => result(id, 'naive', false)),
      },
      {
        label: 'hcp',
        mode: 'hcp',
        ablations: [],
        durationMs: 1,
        results: ids.map((id) => result(id, 'hcp', true)),
      },
      {
        label: 'hcp-approval_gate',
        mode: 'hcp',
        ablations: ['approval_gate'],
        durationMs: 1,
        results: ids.map((id) => result(id, 'hcp-approval_gate', !id.startsWith('af.'))),
      },
    ],
  };
}

describe('attack report', () => {
  it('the corpus has ten core cases, two per class, unique ids, and 69+ more', () => {
    expect(core).toHaveLength(10);
    for (const k of CORE_CLASSES) expect(core.filter((c) => c.core === k)).toHaveLength(2);
    expect(CASES.length - core.length).toBeGreaterThanOrEqual(69);
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
  });

  it('tallies only applicable results; a case passes only when its neighbour is served too', () => {
    const rs = [
      result('cd.ungranted_resource', 'x', true),
      result('cd.ungranted_capability', 'x', true, { neighbourServed: false }),
      { ...result('ts.session_hijack', 'x', false), applicable: false },
    ];
    expect(tally(rs, () => true)).toEqual({
      total: 2,
      blocked: 2,
      neighboursServed: 1,
      passed: 1,
      auditComplete: 2,
    });
  });

  it('an ablation row names exactly the cases blocked in full hcp that succeed with the switch off', () => {
    const [row] = ablationRows(report());
    expect(row).toMatchObject({
      ablation: 'approval_gate',
      coreReExposed: ['af.agent_side_yes', 'af.approval_for_other_arguments'],
      extendedReExposed: [],
      neighboursLost: [],
      paper: 2,
    });
    expect(ablationTable(report())).toContain('| approval_gate | 2 | 2 |');
  });

  it('prints the mode table and lists no difference where the numbers agree with the paper', () => {
    const r = report();
    expect(modeTable(r)).toContain('| B0 naive | 0/10 | 10/10 | 0/10 | 0/10 |');
    expect(modeTable(r)).toContain('| B2 hcp | 10/10 | 10/10 | 10/10 | 10/10 |');
    expect(differences(r)).toEqual([]);
  });

  it('renders a self-contained SVG', () => {
    const svg = renderChart(report());
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('approval_gate');
  });
});
