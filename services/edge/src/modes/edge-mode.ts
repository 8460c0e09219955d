import type { AblationSwitch } from '@hcp/policy';

/** Every mode the edge can run in (DESIGN.md §5); `hcp` is the product, the others exist to be measured against. */
export const EDGE_MODES = ['naive', 'connection', 'hcp'] as const;

/**
 * How the edge enforces: `naive` (B0) forwards every call; `connection` (B1) is the
 * connection-layer baseline as deployed in practice (description linting, per-call prompt
 * answered by the agent's own client, session presence); `hcp` (B2) enforces I1–I8.
 */
export type EdgeMode = (typeof EDGE_MODES)[number];

/** The measurement label each mode has in the benchmark tables. */
export const MODE_BASELINE: Readonly<Record<EdgeMode, string>> = {
  naive: 'B0',
  connection: 'B1',
  hcp: 'B2',
};

/**
 * Reads a mode name (the benchmark's `--runs`). Absent or empty means `hcp`; anything unknown throws,
 * so a typo never silently runs a weaker mode — or silently the strong one when a benchmark
 * meant to measure a baseline.
 */
export function parseEdgeMode(text: string | undefined): EdgeMode {
  const value = (text ?? '').trim().toLowerCase();
  if (value === '') return 'hcp';
  const mode = EDGE_MODES.find((m) => m === value);
  if (mode === undefined)
    throw new Error(
      `unknown edge mode "${(text ?? '').slice(0, 40)}"; known: ${EDGE_MODES.join(', ')}`,
    );
  return mode;
}

/**
 * What each ablation switch turns off, in words an operator reading the start banner
 * understands. A Record over the switch union, so a new switch does not compile without one.
 */
export const ABLATION_EFFECTS: Readonly<Record<AblationSwitch, string>> = {
  audit_required: 'I7: calls run even when the audit cannot record them',
  session_binding: 'I4: a session presented by another principal is accepted',
  handle_owner: 'I4: any principal may peek at or pipe from any handle',
  session_state: 'I8: unknown, expired or ended sessions are accepted',
  init_check: 'I8: requests before initialize completes are accepted',
  version_check: 'I8: unsupported or mismatched protocol versions are accepted',
  definition_pinning: 'I1: tools whose definition changed stay callable',
  canonical_resource: "I3: resources are matched as the caller's string, not canonicalised",
  every_resource:
    'I3/I5: only the first resource argument of a tool is decided (a move checks its source only)',
  url_scheme_port: 'I5: a URL grant for a host covers every scheme and port of that host',
  grant_matching: 'I5: calls need no matching grant',
  approval_gate: 'I2: approval-required capabilities run without an approval',
  pipe_target_policy: 'I6: pipes skip the target decision and data-flow rules',
};

/**
 * Ablations switch off single boundaries of `hcp`; in the baselines there is no boundary to
 * switch off, so asking for both is a configuration mistake and is refused at start.
 */
export function checkModeAblations(mode: EdgeMode, ablations: readonly AblationSwitch[]): void {
  if (mode !== 'hcp' && ablations.length > 0)
    throw new Error(
      `ablations (${ablations.join(', ')}) apply to edge mode hcp only; mode is ${mode}`,
    );
}

const RULE = '='.repeat(78);

/**
 * The text the edge prints at start. `hcp` with no ablations is one calm line; every other
 * configuration is a boxed warning naming what is NOT enforced, so a benchmark setting can
 * never be mistaken for a production one in a log or a terminal.
 */
export function modeBanner(mode: EdgeMode, ablations: readonly AblationSwitch[] = []): string {
  const label = `${mode} (${MODE_BASELINE[mode]})`;
  if (mode === 'hcp' && ablations.length === 0)
    return `HCP edge mode: ${label}; every invariant I1-I8 enforced`;
  const lines: string[] = [];
  switch (mode) {
    case 'naive':
      lines.push(
        `HCP EDGE MODE: ${label}. MEASUREMENT ONLY. NOTHING IS ENFORCED.`,
        'Every tool call is forwarded to its provider as is: no grants, no approvals,',
        'no canonical resources, no handles (output goes straight to the agent),',
        'no decision audit.',
      );
      break;
    case 'connection':
      lines.push(
        `HCP EDGE MODE: ${label}. MEASUREMENT ONLY. CONNECTION-LAYER BASELINE.`,
        'Checked: a session exists; tool descriptions pass the linter; each call is',
        "confirmed by a prompt answered by the agent's OWN client (refused if it cannot ask).",
        'Not checked: grants, principal binding of sessions, canonical resources,',
        'approvals by anyone but the agent side, handles, data flow between tools.',
      );
      break;
    case 'hcp':
      lines.push(
        `HCP EDGE MODE: ${label} WITH ABLATIONS. MEASUREMENT ONLY.`,
        'These boundaries are SWITCHED OFF:',
        ...ablations.map((a) => `  - ${a}: ${ABLATION_EFFECTS[a]}`),
      );
      break;
  }
  if (mode !== 'hcp' && ablations.length > 0)
    lines.push(`Ablations given but ignored outside hcp mode: ${ablations.join(', ')}`);
  lines.push('NEVER run this configuration in production.');
  return [RULE, ...lines.map((l) => `!! ${l}`), RULE].join('\n');
}
