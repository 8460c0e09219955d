// Measurement modes (DESIGN.md §5): the mode switch, the start banner, and the connection-layer
// baseline's building blocks (description linter, per-call gate); for the edge index to re-export.
export {
  ABLATION_EFFECTS,
  EDGE_MODES,
  MODE_BASELINE,
  checkModeAblations,
  modeBanner,
  parseEdgeMode,
  type EdgeMode,
} from './edge-mode';
export {
  LINT_LIMITS,
  isFlagged,
  lintToolDescription,
  type LintFinding,
  type LintOptions,
  type LintRule,
  type LintSeverity,
  type LintableTool,
} from './description-lint';
export {
  CONNECTION_REFUSAL_REASON,
  ClientCannotAskError,
  ConnectionGate,
  DEFAULT_PROMPT_TIMEOUT_MS,
  MAX_ARGUMENTS_PREVIEW,
  argumentsPreview,
  type ConnectionCall,
  type ConnectionGateOptions,
  type ConnectionRefusalKind,
  type ConnectionVerdict,
} from './connection-gate';
export { measurementEnforcement, type ConnectionGatePort } from './measurement';
