/**
 * Switches that turn a single check off. They exist only so the attack
 * benchmark can show which cases each boundary covers; a production
 * deployment runs with none of them, and every service logs them loudly.
 */
export const ABLATION_SWITCHES = [
  'audit_required',
  'session_binding',
  'handle_owner',
  'session_state',
  'init_check',
  'version_check',
  'definition_pinning',
  'canonical_resource',
  'every_resource',
  'url_scheme_port',
  'grant_matching',
  'approval_gate',
  'pipe_target_policy',
] as const;

/** One ablation switch: the name of a rule that can be turned off for measurement. */
export type AblationSwitch = (typeof ABLATION_SWITCHES)[number];

/** True when `value` names an ablation switch (for parsing configuration). */
export function isAblationSwitch(value: string): value is AblationSwitch {
  return (ABLATION_SWITCHES as readonly string[]).includes(value);
}

/** Parses a comma-separated list of switch names; throws on an unknown name so a typo never ablates nothing silently. */
export function parseAblations(text: string | undefined): AblationSwitch[] {
  if (!text) return [];
  const out: AblationSwitch[] = [];
  for (const part of text.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    if (!isAblationSwitch(name)) {
      throw new Error(`unknown ablation switch "${name}"; known: ${ABLATION_SWITCHES.join(', ')}`);
    }
    out.push(name);
  }
  return out;
}
