import { newId, type Grant, type Principal, type ReasonCode, type SessionFacts } from '@hcp/core';
import { recordDecision, refuse, type AuditSink } from '@hcp/policy';
import { createLogger } from '@hcp/platform';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { CallOutcome, CallService, PeekOutcome } from '../call/call.service';
import type { CallableCapability, UpstreamPort } from '../call/ports';
import type { ProtocolRequest, ProtocolVerdict } from '../protocol/protocol-request';
import { EDGE_JSON_RPC_CODES, EdgeRpcError } from './json-rpc';
import {
  PEEK_TOOL,
  PIPE_TOOL,
  capabilityIdOfToolName,
  peekArguments,
  pipeArguments,
  visibleTools,
  type ListingCache,
} from './tool-catalog';

/** The context one HTTP request runs in, once authenticated and past protocol state. */
export interface McpRequestContext {
  readonly principal: Principal;
  readonly session: SessionFacts;
  readonly traceId?: string;
}

/** One tools/call as the SDK parsed it. */
export interface McpToolCall {
  readonly name: string;
  readonly args: Record<string, unknown>;
  /** The approval id a client retries an approved call with (`_meta["hcp/approvalId"]`). */
  readonly approvalId?: string;
}

/** What the agent's client is asked before a call runs; shown to whoever sits at that client. */
export interface ClientQuestion {
  /** Agent-facing tool name (`provider.tool`). */
  readonly tool: string;
  /** One line for the prompt, e.g. `Allow fs.read_file with {"path":"/data/x"}?`. */
  readonly message: string;
  /** The arguments as bounded JSON (truncated, marked with …). */
  readonly argumentsPreview: string;
}

/**
 * Asks the agent's own client to confirm a call (MCP elicitation on the call's stream). Resolves
 * true only on an explicit accept; a client that cannot be asked makes it reject or resolve false.
 */
export type AskClient = (question: ClientQuestion) => Promise<boolean>;

/**
 * How the endpoint enforces once a request is authenticated: protocol state, discovery and tool
 * calls. The endpoint itself only authenticates, bounds input, records its own refusals and speaks
 * MCP. Production composes exactly one implementation, HcpEnforcement (I1–I8); the measurement
 * baselines and ablations are other implementations that only the benchmark's composition root
 * builds (modes/), so no production setting can select one.
 */
export interface McpEnforcement {
  /** For logs: `hcp`, or the baseline / ablation a benchmark composed. */
  readonly label: string;
  /** Switches off in this composition, recorded on every refusal the endpoint makes; empty in production. */
  readonly ablations: readonly string[];
  /** Whether `initialize` opens a signed session (a baseline may serve without one). */
  readonly opensSessions: boolean;
  /**
   * Whether a call may ask the agent's client mid-call: replies then stream as SSE (to carry the
   * question) and answers posted later are handed to the request waiting on them.
   */
  readonly asksClient: boolean;
  /** Protocol state of one message (or of a GET/DELETE); the endpoint records and answers a `refuse`. */
  protocol(request: ProtocolRequest & { readonly principalId: string }): Promise<ProtocolVerdict>;
  /** Admits an `initialize` (a discovery decision) or throws the EdgeRpcError refusing it. */
  admitInitialize(context: McpRequestContext, negotiatedVersion: string): void;
  /** What tools/list shows the caller (a discovery decision, recorded by implementations that audit). */
  listTools(context: McpRequestContext): Promise<Tool[]>;
  /** Serves one tools/call; a refusal is an EdgeRpcError carrying the reason (and decision id). */
  callTool(context: McpRequestContext, call: McpToolCall, ask: AskClient): Promise<CallToolResult>;
}

/** What HcpEnforcement needs. */
export interface HcpEnforcementDeps {
  readonly protocol: {
    evaluate(request: ProtocolRequest): Promise<ProtocolVerdict>;
  };
  readonly calls: Pick<CallService, 'callTool' | 'peek' | 'pipe'>;
  /** The tools each provider currently lists (for tools/list and observed digests). */
  readonly listings: ListingCache;
  /** The manifest entries (pinned digests) the grant-store holds. */
  readonly manifest: { all(): Promise<readonly CallableCapability[]> };
  /** The principal's grants, for discovery filtering only. */
  readonly grants: { grantsOf(principalId: string): Promise<readonly Grant[]> };
  /** Where discovery decisions and the edge's own argument refusals are recorded. */
  readonly audit: AuditSink;
  readonly now?: () => number;
}

/**
 * What a composition root may build another enforcement from: the production one (to wrap, as an
 * ablation does) and the parts a baseline serves with. Only the benchmark's root uses it.
 */
export interface EnforcementParts {
  readonly hcp: McpEnforcement;
  readonly protocol: HcpEnforcementDeps['protocol'];
  readonly listings: ListingCache;
  /** Direct upstream access (a baseline forwards calls without the decision point). */
  readonly upstream: UpstreamPort;
}

/** Builds the enforcement of one edge from its parts (see EnforcementParts). */
export type EnforcementFactory = (parts: EnforcementParts) => McpEnforcement;

/** Longest `rule` text of a discovery entry: the tool names seen, then `+N more`. */
export const DISCOVERY_RULE_MAX_CHARS = 1024;

const log = createLogger('HcpEnforcement');

/**
 * The product: protocol state as ProtocolState decides it, discovery filtered by pins and grants
 * and recorded as an allow (who saw which tools), every call through CallService to the decision
 * point. No switch turns any of it off.
 */
export class HcpEnforcement implements McpEnforcement {
  readonly label = 'hcp';
  readonly ablations: readonly string[] = [];
  readonly opensSessions = true;
  readonly asksClient = false;
  private readonly now: () => number;

  constructor(private readonly deps: HcpEnforcementDeps) {
    this.now = deps.now ?? Date.now;
  }

  protocol(request: ProtocolRequest & { readonly principalId: string }): Promise<ProtocolVerdict> {
    return this.deps.protocol.evaluate(request);
  }

  admitInitialize(context: McpRequestContext, negotiatedVersion: string): void {
    this.recordDiscovery(
      context,
      'protocol',
      `initialize: protocol ${negotiatedVersion}; capabilities: tools`,
    );
  }

  async listTools(context: McpRequestContext): Promise<Tool[]> {
    const [manifest, grants] = await Promise.all([
      this.deps.manifest.all(),
      this.deps.grants.grantsOf(context.principal.id),
    ]);
    const tools = visibleTools({
      listed: this.deps.listings.all(),
      manifest: new Map(manifest.map((m) => [m.capability.id, m])),
      grants,
      now: this.now(),
    });
    this.recordDiscovery(context, 'tools/list', discoveryRule(tools));
    return tools;
  }

  async callTool(context: McpRequestContext, call: McpToolCall): Promise<CallToolResult> {
    const { name, args, approvalId } = call;
    const base = {
      principal: context.principal,
      session: context.session,
      ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
    };
    if (name === PEEK_TOOL) {
      const parsed = peekArguments.safeParse(args);
      if (!parsed.success) throw this.invalidArguments(context, PEEK_TOOL, parsed.error);
      const outcome = await this.deps.calls.peek({
        ...base,
        handleId: parsed.data.handle,
        ...(parsed.data.maxBytes === undefined ? {} : { maxBytes: parsed.data.maxBytes }),
      });
      return peekResult(outcome);
    }
    if (name === PIPE_TOOL) {
      const parsed = pipeArguments.safeParse(args);
      if (!parsed.success) throw this.invalidArguments(context, PIPE_TOOL, parsed.error);
      const target = capabilityIdOfToolName(parsed.data.tool);
      if (target === undefined) throw this.unknownTool(context, 'handle/pipe', parsed.data.tool);
      const observed = this.deps.listings.get(target)?.digest;
      const outcome = await this.deps.calls.pipe({
        ...base,
        sourceHandleId: parsed.data.handle,
        targetCapabilityId: target,
        argumentName: parsed.data.argument,
        args: parsed.data.arguments ?? {},
        ...(observed === undefined ? {} : { observedDigest: observed }),
        ...(approvalId === undefined ? {} : { approvalId }),
      });
      return callResult(outcome);
    }
    // A tool is named `provider.tool` only; the capability id `provider/tool` is not a tool name.
    // An unknown name of that form still goes to the decision point, which denies and audits it (I1).
    const capabilityId = capabilityIdOfToolName(name);
    if (capabilityId === undefined) throw this.unknownTool(context, 'tools/call', name);
    const observed = this.deps.listings.get(capabilityId)?.digest;
    const outcome = await this.deps.calls.callTool({
      ...base,
      capabilityId,
      args,
      ...(observed === undefined ? {} : { observedDigest: observed }),
      ...(approvalId === undefined ? {} : { approvalId }),
    });
    return callResult(outcome);
  }

  /**
   * Records a discovery decision before its answer leaves (I7: nothing is shown unrecorded). When
   * the audit cannot take the entry, the discovery is refused as AUDIT_UNAVAILABLE instead.
   */
  private recordDiscovery(
    context: McpRequestContext,
    family: 'protocol' | 'tools/list',
    rule: string,
  ): void {
    const decidedAt = this.now();
    try {
      recordDecision(
        this.deps.audit,
        {
          id: newId('dec'),
          outcome: 'allow',
          reason: 'ALLOWED',
          check: family === 'protocol' ? 'initialize' : 'discovery',
          explanation: rule,
          decidedAt,
          ablations: [],
        },
        { ...subjectOf(context), endpointFamily: family, rule },
      );
    } catch (err: unknown) {
      const refusal = refuse(
        this.deps.audit,
        {
          reason: 'AUDIT_UNAVAILABLE',
          check: 'audit_path',
          explanation: `${family === 'protocol' ? 'initialize' : 'tools/list'} not answered: the audit cannot record it`,
          decidedAt,
        },
        { ...subjectOf(context), endpointFamily: family },
      );
      log.warn({ err, decisionId: refusal.decision.id }, 'discovery refused: audit unavailable');
      throw new EdgeRpcError(EDGE_JSON_RPC_CODES.DENIED, refusal.decision.explanation, {
        reason: 'AUDIT_UNAVAILABLE',
        decisionId: refusal.decision.id,
        ...(refusal.decision.invariant === undefined
          ? {}
          : { invariant: refusal.decision.invariant }),
      });
    }
  }

  /**
   * A name that cannot be a tool (not `provider.tool`, e.g. the capability id `provider/tool`):
   * refused as CAPABILITY_UNKNOWN and recorded, as the decision point refuses an unlisted tool; as
   * a pipe's target, PIPE_TARGET_DENIED with that target reason, as the decision point reports it.
   */
  private unknownTool(
    context: McpRequestContext,
    family: 'tools/call' | 'handle/pipe',
    name: string,
  ): EdgeRpcError {
    const shown = name.length > 128 ? `${name.slice(0, 127)}…` : name;
    const message = `${shown} is not a tool name: tools are named provider.tool`;
    const refusal = refuse(
      this.deps.audit,
      family === 'tools/call'
        ? {
            reason: 'CAPABILITY_UNKNOWN',
            check: 'metadata_authority',
            explanation: message,
            decidedAt: this.now(),
          }
        : {
            reason: 'PIPE_TARGET_DENIED',
            targetReason: 'CAPABILITY_UNKNOWN',
            check: 'data_flow',
            explanation: `target metadata_authority denied: CAPABILITY_UNKNOWN: ${message}`,
            decidedAt: this.now(),
          },
      { ...subjectOf(context), endpointFamily: family },
    );
    if (!refusal.audited)
      log.error(
        { err: refusal.auditError, decisionId: refusal.decision.id },
        'refusal not audited',
      );
    return new EdgeRpcError(EDGE_JSON_RPC_CODES.DENIED, message, {
      reason: refusal.decision.reason,
      ...(refusal.decision.targetReason === undefined
        ? {}
        : { targetReason: refusal.decision.targetReason }),
      decisionId: refusal.decision.id,
      ...(refusal.decision.invariant === undefined
        ? {}
        : { invariant: refusal.decision.invariant }),
    });
  }

  /** Arguments of a built-in tool that do not fit its schema: refused, recorded, -32602. */
  private invalidArguments(
    context: McpRequestContext,
    tool: string,
    error: z.ZodError,
  ): EdgeRpcError {
    const issue = error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(arguments)';
    const message = `${tool}: ${field}: ${issue?.message ?? 'invalid'}`;
    const refusal = refuse(
      this.deps.audit,
      {
        reason: 'INPUT_INVALID',
        check: 'input_bounds',
        explanation: message,
        decidedAt: this.now(),
      },
      {
        ...subjectOf(context),
        endpointFamily: tool === PEEK_TOOL ? 'handle/peek' : 'handle/pipe',
      },
    );
    if (!refusal.audited)
      log.error(
        { err: refusal.auditError, decisionId: refusal.decision.id },
        'refusal not audited',
      );
    return new EdgeRpcError(EDGE_JSON_RPC_CODES.INVALID_PARAMS, message, {
      reason: 'INPUT_INVALID',
      decisionId: refusal.decision.id,
      field,
    });
  }
}

function subjectOf(context: McpRequestContext) {
  return {
    principal: context.principal,
    session: context.session,
    ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
  };
}

/** The tool names a discovery answer showed, bounded to DISCOVERY_RULE_MAX_CHARS. */
export function discoveryRule(tools: readonly Pick<Tool, 'name'>[]): string {
  const head = `tools/list: ${tools.length} tool${tools.length === 1 ? '' : 's'}: `;
  let text = head;
  for (let i = 0; i < tools.length; i++) {
    const name = tools[i]!.name;
    const more = ` +${tools.length - i} more`;
    const sep = i === 0 ? '' : ',';
    if (text.length + sep.length + name.length + more.length > DISCOVERY_RULE_MAX_CHARS) {
      return `${text}${more}`;
    }
    text += `${sep}${name}`;
  }
  return text;
}

/** A refusal as the JSON-RPC error the agent sees: reason code, decision id, no secrets. */
function refusalError(
  outcome: Extract<CallOutcome | PeekOutcome, { kind: 'refused' }>,
): EdgeRpcError {
  const code =
    outcome.reason === 'INPUT_INVALID'
      ? EDGE_JSON_RPC_CODES.INVALID_PARAMS
      : EDGE_JSON_RPC_CODES.DENIED;
  const data: { reason: ReasonCode; [key: string]: unknown } = { reason: outcome.reason };
  if (outcome.decisionId !== undefined) data.decisionId = outcome.decisionId;
  if (outcome.invariant !== undefined) data.invariant = outcome.invariant;
  if (outcome.targetReason !== undefined) data.targetReason = outcome.targetReason;
  if ('approvalRequestId' in outcome && outcome.approvalRequestId !== undefined)
    data.approvalRequestId = outcome.approvalRequestId;
  return new EdgeRpcError(code, outcome.message, data);
}

function callResult(outcome: CallOutcome): CallToolResult {
  if (outcome.kind === 'refused') throw refusalError(outcome);
  const structured: Record<string, unknown> = {
    handle: outcome.handleId,
    sizeBytes: outcome.sizeBytes,
    decisionId: outcome.decisionId,
    toolError: outcome.toolError,
  };
  if (outcome.preview !== undefined) structured.preview = outcome.preview;
  return {
    content: [{ type: 'text', text: JSON.stringify(structured) }],
    structuredContent: structured,
    isError: outcome.toolError,
  };
}

function peekResult(outcome: PeekOutcome): CallToolResult {
  if (outcome.kind === 'refused') throw refusalError(outcome);
  return {
    content: [{ type: 'text', text: outcome.text }],
    structuredContent: {
      handle: outcome.handle.id,
      truncated: outcome.truncated,
      sizeBytes: outcome.handle.sizeBytes,
      labels: outcome.handle.labels,
    },
  };
}
