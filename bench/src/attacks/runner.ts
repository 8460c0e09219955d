import type { EdgeMode } from '@hcp/edge';
import { ABLATION_SWITCHES, type AblationSwitch } from '@hcp/policy';
import { CASES, type AttackCase, type Category, type CoreClass } from './cases';
import { openPhase, type Refusal } from './conversation';
import type { AttackWorld } from './stack';

/** One configuration the suite runs in: an edge mode, and for hcp at most the listed ablations. */
export interface RunSpec {
  /** `naive`, `connection`, `hcp`, or `hcp-<switch>`. */
  readonly label: string;
  readonly mode: EdgeMode;
  readonly ablations: readonly AblationSwitch[];
}

/** The three modes, then hcp with each single ablation switch (the order of ABLATION_SWITCHES). */
export function defaultRuns(): RunSpec[] {
  return [
    { label: 'naive', mode: 'naive', ablations: [] },
    { label: 'connection', mode: 'connection', ablations: [] },
    { label: 'hcp', mode: 'hcp', ablations: [] },
    ...ABLATION_SWITCHES.map((s) => ({ label: `hcp-${s}`, mode: 'hcp' as const, ablations: [s] })),
  ];
}

/** A refusal the attack met, and whether the audit REST API returns its deny entry. */
export interface RefusalResult {
  readonly reason?: string;
  readonly decisionId?: string;
  /** For a refused pipe: why the target call itself was denied. */
  readonly targetReason?: string;
  readonly audited: boolean;
  /** The error text, kept only when no reason code came with it. */
  readonly message?: string;
}

/** One case in one run. */
export interface CaseResult {
  readonly id: string;
  readonly core?: CoreClass;
  readonly category: Category;
  readonly run: string;
  /** false: the attack does not exist in this mode (or needs fetch, absent); nothing else is set. */
  readonly applicable: boolean;
  readonly skipped?: string;
  /** The attacker's success condition held. */
  readonly attackSucceeded: boolean;
  /** Not succeeded, and the attack ran to its end without a harness error. */
  readonly blocked: boolean;
  readonly neighbourServed: boolean;
  /** Blocked, at least one refusal, and every refusal's deny entry found by its decision id. */
  readonly auditComplete: boolean;
  readonly refusals: readonly RefusalResult[];
  /** Per-call prompts the agents' clients answered (connection mode). */
  readonly prompts: number;
  readonly error?: string;
  readonly ms: number;
}

/** How long the runner waits for a deny entry to be ingested before calling it missing. */
const AUDIT_WAIT_MS = 5000;

async function auditedRefusals(
  world: AttackWorld,
  refusals: readonly Refusal[],
): Promise<RefusalResult[]> {
  const out: RefusalResult[] = [];
  for (const r of refusals) {
    const reason = r.data?.reason;
    const decisionId = r.data?.decisionId;
    const audited =
      reason !== undefined &&
      decisionId !== undefined &&
      (await world.findDenial(decisionId, reason, AUDIT_WAIT_MS)) !== undefined;
    out.push({
      ...(reason === undefined ? {} : { reason }),
      ...(decisionId === undefined ? {} : { decisionId }),
      ...(r.data?.targetReason === undefined ? {} : { targetReason: r.data.targetReason }),
      audited,
      // The reason code says it when there is one; otherwise the message is all there is.
      ...(reason === undefined ? { message: r.message.slice(0, 200) } : {}),
    });
  }
  return out;
}

/** Runs one case in the running edge: the attack, its audit check, then the neighbour. */
export async function runCase(
  world: AttackWorld,
  run: Parameters<typeof openPhase>[1],
  label: string,
  c: AttackCase,
): Promise<CaseResult> {
  const base = {
    id: c.id,
    ...(c.core === undefined ? {} : { core: c.core }),
    category: c.category,
    run: label,
  };
  const notRun = (skipped: string): CaseResult => ({
    ...base,
    applicable: false,
    skipped,
    attackSucceeded: false,
    blocked: false,
    neighbourServed: false,
    auditComplete: false,
    refusals: [],
    prompts: 0,
    ms: 0,
  });
  if (c.modes !== undefined && !c.modes.includes(run.mode))
    return notRun(`no such attack in ${run.mode} mode`);
  if (c.needsFetch === true && world.origin === undefined)
    return notRun('mcp-server-fetch is not installed');

  const started = Date.now();
  const errors: string[] = [];
  const attack = openPhase(world, run);
  let succeeded = false;
  try {
    succeeded = await c.attack(attack.ctx);
  } catch (err) {
    errors.push(`attack: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await attack.close();
  }
  const blocked = !succeeded && errors.length === 0;
  const refusals = await auditedRefusals(world, attack.refusals);
  const neighbour = openPhase(world, run);
  let served = false;
  try {
    served = await c.neighbour(neighbour.ctx);
  } catch (err) {
    errors.push(`neighbour: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await neighbour.close();
  }
  return {
    ...base,
    applicable: true,
    attackSucceeded: succeeded,
    blocked,
    neighbourServed: served,
    auditComplete: blocked && refusals.length > 0 && refusals.every((r) => r.audited),
    refusals,
    prompts: attack.prompts.count + neighbour.prompts.count,
    ...(errors.length === 0 ? {} : { error: errors.join('; ') }),
    ms: Date.now() - started,
  };
}

/** Runs `cases` against a fresh edge started as `spec` says; the rest of the world stays up. */
export async function runSpec(
  world: AttackWorld,
  spec: RunSpec,
  cases: readonly AttackCase[],
  onResult?: (r: CaseResult) => void,
): Promise<CaseResult[]> {
  const run = await world.startEdge({ mode: spec.mode, ablations: spec.ablations });
  try {
    const results: CaseResult[] = [];
    for (const c of cases) {
      const r = await runCase(world, run, spec.label, c);
      results.push(r);
      onResult?.(r);
    }
    return results;
  } finally {
    await run.close();
  }
}

/**
 * What the hcp run misses of the bar (every attack blocked, every neighbour served, every denial
 * audited); a case with a knownGap is held to its gap instead, so fixing the gap is noticed too.
 */
export function hcpProblems(results: readonly CaseResult[]): string[] {
  const problems: string[] = [];
  for (const r of results) {
    if (!r.applicable) continue;
    const c = CASES.find((x) => x.id === r.id);
    const gap = c?.knownGap;
    if (r.error !== undefined) problems.push(`${r.id}: ${r.error}`);
    if (!r.neighbourServed) problems.push(`${r.id}: neighbour not served`);
    if (gap?.what === 'attack') {
      if (r.blocked) problems.push(`${r.id}: blocked now; remove its knownGap (${gap.why})`);
      continue;
    }
    if (!r.blocked) problems.push(`${r.id}: attack not blocked`);
    if (gap?.what === 'audit') {
      if (r.auditComplete) problems.push(`${r.id}: audit complete now; remove its knownGap`);
      continue;
    }
    const want = c?.refusedWith;
    if (
      r.blocked &&
      want !== undefined &&
      !r.refusals.some(
        (x) =>
          x.reason === want.reason &&
          (want.targetReason === undefined || x.targetReason === (want.targetReason ?? undefined)),
      )
    )
      problems.push(
        `${r.id}: not refused ${want.reason}${want.targetReason === undefined ? '' : ` (target: ${want.targetReason ?? 'none'})`} (${r.refusals.map((x) => `${x.reason ?? x.message}${x.targetReason === undefined ? '' : ` (target: ${x.targetReason})`}`).join(', ') || 'no refusal'})`,
      );
    if (r.blocked && !r.auditComplete)
      problems.push(
        `${r.id}: denial not found in the audit (${r.refusals.map((x) => `${x.reason ?? x.message}${x.audited ? '' : ' (missing)'}`).join(', ')})`,
      );
  }
  return problems;
}
