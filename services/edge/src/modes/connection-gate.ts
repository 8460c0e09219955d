import { createHash } from 'node:crypto';
import type { ReasonCode } from '@hcp/core';
import type { AskClient, ClientQuestion } from '../http/enforcement';
import {
  isFlagged,
  lintToolDescription,
  type LintableTool,
  type LintFinding,
  type LintOptions,
} from './description-lint';

// The question and the way to ask are the endpoint's (it owns the MCP elicitation); re-exported
// here because the gate is their main user.
export type { AskClient, ClientQuestion };

/** Thrown by an AskClient when the client declared no elicitation capability. */
export class ClientCannotAskError extends Error {
  override readonly name = 'ClientCannotAskError';
  constructor(message = 'the client cannot be asked (no elicitation capability)') {
    super(message);
  }
}

/** Why the connection gate refused a call; each maps to one reason code (CONNECTION_REFUSAL_REASON). */
export type ConnectionRefusalKind =
  | 'no_session'
  | 'tool_flagged'
  | 'prompt_unavailable'
  | 'prompt_declined'
  | 'prompt_failed'
  | 'prompt_timeout';

/**
 * The reason code each refusal travels with. A flagged tool is TOOL_DEFINITION_CHANGED (its
 * definition is what was refused, and an operator must look at it), as the edge's endpoint
 * already reports it; every prompt failure is APPROVAL_REQUIRED (the call needed a yes and
 * did not get one); no session is SESSION_NOT_INITIALIZED.
 */
export const CONNECTION_REFUSAL_REASON: Readonly<Record<ConnectionRefusalKind, ReasonCode>> = {
  no_session: 'SESSION_NOT_INITIALIZED',
  tool_flagged: 'TOOL_DEFINITION_CHANGED',
  prompt_unavailable: 'APPROVAL_REQUIRED',
  prompt_declined: 'APPROVAL_REQUIRED',
  prompt_failed: 'APPROVAL_REQUIRED',
  prompt_timeout: 'APPROVAL_REQUIRED',
};

/** The gate's answer for one call. */
export type ConnectionVerdict =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly kind: ConnectionRefusalKind;
      readonly reason: ReasonCode;
      readonly message: string;
      /** The lint findings, for `tool_flagged`. */
      readonly findings?: readonly LintFinding[];
    };

/** One call as the connection gate sees it. */
export interface ConnectionCall {
  /** The MCP session id the request carried; any session will do (B1 binds no principal to it). */
  readonly sessionId: string | undefined;
  /** The tool's definition as its provider lists it now, under its agent-facing name. */
  readonly tool: LintableTool;
  readonly args: Record<string, unknown>;
  /**
   * Whether the client declared the elicitation capability at initialize. false: refused
   * without asking. Undefined: the AskClient decides (and must throw ClientCannotAskError).
   */
  readonly clientCanAsk?: boolean;
  /** This request's way to ask its client; overrides the gate's default. */
  readonly askClient?: AskClient;
}

/** How the gate is built. */
export interface ConnectionGateOptions {
  /** Default way to ask the client, when a call brings none. Absent: every call needs one. */
  readonly askClient?: AskClient;
  /** How long a prompt may stay unanswered; default 60 s, then the call is refused. */
  readonly promptTimeoutMs?: number;
  /** Names of every tool the agent can see, for the linter's cross-tool rule. */
  readonly toolNames?: () => Iterable<string>;
  /** Linter knobs other than the tool names. */
  readonly lint?: Omit<LintOptions, 'otherToolNames'>;
}

/** Default bound on an unanswered per-call prompt. */
export const DEFAULT_PROMPT_TIMEOUT_MS = 60_000;
/** Longest arguments preview put in a prompt. */
export const MAX_ARGUMENTS_PREVIEW = 500;
/** Lint results kept (keyed by definition digest); linting runs on every list and call otherwise. */
const LINT_CACHE_SIZE = 1024;

/** Bounded JSON of the arguments for a prompt; never throws (cycles, BigInt, huge values). */
export function argumentsPreview(args: Record<string, unknown>): string {
  let json: string;
  try {
    json = JSON.stringify(args) ?? '{}';
  } catch {
    json = '[arguments not serialisable]';
  }
  return json.length > MAX_ARGUMENTS_PREVIEW
    ? `${json.slice(0, MAX_ARGUMENTS_PREVIEW - 1)}…`
    : json;
}

/**
 * The connection-layer baseline (B1) as deployed in practice: the call must come in some
 * session, the tool's description must pass the linter, and the agent's own client must
 * say yes to a per-call prompt. What it does not know — who the principal is, what resource
 * the arguments name, whether the "yes" came from a human or from the agent's own client
 * code — is what B1 is measured for. The MCP endpoint uses `flagged` for tools/list and `check` for each call.
 */
export class ConnectionGate {
  private readonly lintCache = new Map<string, readonly LintFinding[]>();
  private readonly timeoutMs: number;

  constructor(private readonly options: ConnectionGateOptions = {}) {
    this.timeoutMs = options.promptTimeoutMs ?? DEFAULT_PROMPT_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0)
      throw new Error('connection gate: promptTimeoutMs must be positive');
  }

  /** The linter's findings for a tool (cached by definition and the set of tool names). */
  findings(tool: LintableTool): readonly LintFinding[] {
    const names = [...(this.options.toolNames?.() ?? [])].sort();
    const lint = () =>
      Object.freeze(lintToolDescription(tool, { ...this.options.lint, otherToolNames: names }));
    let key: string;
    try {
      key = createHash('sha256')
        .update(
          JSON.stringify([tool.name, tool.description ?? null, tool.inputSchema ?? null, names]),
        )
        .digest('base64url');
    } catch {
      return lint(); // not JSON (a cycle, a BigInt): lint without caching
    }
    const hit = this.lintCache.get(key);
    if (hit !== undefined) return hit;
    const found = lint();
    if (this.lintCache.size >= LINT_CACHE_SIZE) {
      const oldest = this.lintCache.keys().next().value;
      if (oldest !== undefined) this.lintCache.delete(oldest);
    }
    this.lintCache.set(key, found);
    return found;
  }

  /** True when the linter blocks the tool: hidden from tools/list, calls refused. */
  flagged(tool: LintableTool): boolean {
    return isFlagged(this.findings(tool));
  }

  /** Every B1 check for one call, in the order a connection-layer gateway runs them. */
  async check(call: ConnectionCall): Promise<ConnectionVerdict> {
    if (call.sessionId === undefined || call.sessionId === '')
      return refuse('no_session', 'the call carries no session (initialize first)');
    const findings = this.findings(call.tool);
    if (isFlagged(findings)) {
      const rules = [...new Set(findings.filter((f) => f.severity === 'block').map((f) => f.rule))];
      return {
        ...refuse(
          'tool_flagged',
          `${call.tool.name}: the description linter flagged ${rules.join(', ')}`,
        ),
        findings,
      };
    }
    const refused = await this.prompt({
      tool: call.tool.name,
      args: call.args,
      ...(call.clientCanAsk !== undefined && { clientCanAsk: call.clientCanAsk }),
      ...(call.askClient !== undefined && { askClient: call.askClient }),
    });
    return refused ?? { allowed: true };
  }

  /** Asks the client; undefined means an explicit yes, anything else is the refusal. */
  private async prompt(call: {
    readonly tool: string;
    readonly args: Record<string, unknown>;
    readonly clientCanAsk?: boolean;
    readonly askClient?: AskClient;
  }): Promise<Extract<ConnectionVerdict, { allowed: false }> | undefined> {
    const ask = call.askClient ?? this.options.askClient;
    // No way to ask is a refusal, never an implicit yes.
    if (call.clientCanAsk === false || ask === undefined)
      return refuse(
        'prompt_unavailable',
        `${call.tool}: the client cannot be asked to confirm the call`,
      );
    const preview = argumentsPreview(call.args);
    const question: ClientQuestion = {
      tool: call.tool,
      message: `Allow ${call.tool} with ${preview}?`,
      argumentsPreview: preview,
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    try {
      const answer = await Promise.race([ask(question), timeout]);
      if (answer === 'timeout')
        return refuse(
          'prompt_timeout',
          `${call.tool}: no answer to the confirmation within ${this.timeoutMs} ms`,
        );
      // Only a real boolean true is a yes; a truthy string or object from a sloppy client is not.
      if (answer !== true)
        return refuse('prompt_declined', `${call.tool}: the call was not confirmed`);
      return undefined;
    } catch (err: unknown) {
      if (err instanceof ClientCannotAskError)
        return refuse('prompt_unavailable', `${call.tool}: ${err.message}`);
      return refuse('prompt_failed', `${call.tool}: asking the client failed`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function refuse(
  kind: ConnectionRefusalKind,
  message: string,
): Extract<ConnectionVerdict, { allowed: false }> {
  return { allowed: false, kind, reason: CONNECTION_REFUSAL_REASON[kind], message };
}
