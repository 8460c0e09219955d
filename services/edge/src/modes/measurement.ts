import { HcpError, type ReasonCode, type SessionFacts } from '@hcp/core';
import type { AblationSwitch } from '@hcp/policy';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type {
  AskClient,
  EnforcementFactory,
  EnforcementParts,
  McpEnforcement,
  McpRequestContext,
  McpToolCall,
} from '../http/enforcement';
import { EDGE_JSON_RPC_CODES, EdgeRpcError } from '../http/json-rpc';
import { BUILTIN_TOOLS, capabilityIdOfToolName, toolNameOf } from '../http/tool-catalog';
import type { ProtocolRequest, ProtocolVerdict } from '../protocol/protocol-request';
import { ConnectionGate } from './connection-gate';
import { checkModeAblations, type EdgeMode } from './edge-mode';

/**
 * The measurement baselines and ablations as enforcements of the MCP endpoint. Nothing in the
 * production edge (main.ts, edge.ts, config.ts) imports this folder: only the benchmark's
 * composition root (bench/src/attacks) builds one and hands it to startEdge, so no production
 * setting can switch a check off.
 */

/**
 * The connection-layer baseline's gate (B1): which tools the linter hides, and its per-call
 * check (session present, tool not flagged, the client's yes).
 */
export type ConnectionGatePort = Pick<ConnectionGate, 'flagged' | 'check'>;

/** Which ablation switch turns each protocol refusal into a pass (mirrors the engine's checks). */
const PROTOCOL_ABLATION: Partial<Record<ReasonCode, AblationSwitch>> = {
  SESSION_NOT_INITIALIZED: 'init_check',
  SESSION_UNKNOWN: 'session_state',
  SESSION_EXPIRED: 'session_state',
  PROTOCOL_VERSION_UNSUPPORTED: 'version_check',
  PROTOCOL_VERSION_MISMATCH: 'version_check',
  SESSION_FOREIGN: 'session_binding',
};

/**
 * What the connection-layer baseline (B1) checks of protocol state: what the SDK's own stateful
 * transport checks — the session id is one it issued and not ended, the version header names a
 * supported version. It does not bind sessions to principals nor compare the header with the
 * negotiated version, and counts a session as initialized once initialize was answered.
 */
const CONNECTION_MODE_IGNORES: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  'SESSION_FOREIGN',
  'PROTOCOL_VERSION_MISMATCH',
]);

/**
 * The enforcement a benchmark run measures: `hcp` as is, `hcp` with ablation switches, or a
 * baseline. Throws for ablations outside hcp (they switch off boundaries only hcp has).
 */
export function measurementEnforcement(
  mode: EdgeMode,
  ablations: readonly AblationSwitch[] = [],
  options: { readonly connectionGate?: ConnectionGatePort } = {},
): EnforcementFactory {
  checkModeAblations(mode, ablations);
  switch (mode) {
    case 'hcp':
      return ablations.length === 0
        ? (parts) => parts.hcp
        : (parts) => new AblatedEnforcement(parts.hcp, ablations);
    case 'naive':
      return (parts) => new NaiveEnforcement(parts);
    case 'connection':
      return (parts) =>
        new ConnectionEnforcement(
          parts,
          options.connectionGate ??
            new ConnectionGate({
              toolNames: () => parts.listings.allListed().map((l) => toolNameOf(l.capabilityId)),
            }),
        );
  }
}

const proceed = (
  verdict: Extract<ProtocolVerdict, { kind: 'refuse' }>,
): Extract<ProtocolVerdict, { kind: 'proceed' }> => ({
  kind: 'proceed',
  revision: verdict.revision,
  session: verdict.session,
  lifecycle: 'none',
});

/** hcp with single boundaries switched off: the protocol ones here, the engine ones in its PDP. */
class AblatedEnforcement implements McpEnforcement {
  readonly label: string;
  readonly opensSessions = true;
  readonly asksClient = false;
  private readonly off: ReadonlySet<string>;

  constructor(
    private readonly hcp: McpEnforcement,
    readonly ablations: readonly AblationSwitch[],
  ) {
    this.label = `hcp-${ablations.join('+')}`;
    this.off = new Set(ablations);
  }

  async protocol(request: ProtocolRequest & { readonly principalId: string }) {
    const verdict = await this.hcp.protocol(request);
    if (verdict.kind !== 'refuse') return verdict;
    const ablation = PROTOCOL_ABLATION[verdict.error.reason];
    return ablation !== undefined && this.off.has(ablation) ? proceed(verdict) : verdict;
  }

  admitInitialize(context: McpRequestContext, negotiatedVersion: string): void {
    this.hcp.admitInitialize(context, negotiatedVersion);
  }

  listTools(context: McpRequestContext): Promise<Tool[]> {
    return this.hcp.listTools(context);
  }

  callTool(context: McpRequestContext, call: McpToolCall, ask: AskClient): Promise<CallToolResult> {
    return this.hcp.callTool(context, call, ask);
  }
}

/** The upstream output straight back to the agent, as the baselines serve a call. */
async function forward(
  parts: EnforcementParts,
  call: McpToolCall,
  gate?: (tool: Tool) => Promise<void>,
): Promise<CallToolResult> {
  const { name, args } = call;
  if (BUILTIN_TOOLS.some((t) => t.name === name)) {
    throw new EdgeRpcError(EDGE_JSON_RPC_CODES.INVALID_PARAMS, `${name} exists only in hcp mode`, {
      reason: 'CAPABILITY_UNKNOWN',
    });
  }
  const capabilityId = capabilityIdOfToolName(name);
  const listed = capabilityId === undefined ? undefined : parts.listings.listed(capabilityId);
  if (capabilityId === undefined || listed === undefined) {
    throw new EdgeRpcError(EDGE_JSON_RPC_CODES.INVALID_PARAMS, `unknown tool ${name}`, {
      reason: 'CAPABILITY_UNKNOWN',
    });
  }
  if (gate !== undefined) await gate({ ...listed.tool, name });
  let result: Awaited<ReturnType<EnforcementParts['upstream']['callTool']>>;
  try {
    result = await parts.upstream.callTool(capabilityId, args);
  } catch (err: unknown) {
    // The baseline's own refusal (e.g. the egress proxy's): typed, not recorded (no decision audit).
    if (!(err instanceof HcpError)) throw err;
    throw new EdgeRpcError(
      err.reason === 'INPUT_INVALID'
        ? EDGE_JSON_RPC_CODES.INVALID_PARAMS
        : EDGE_JSON_RPC_CODES.DENIED,
      err.message,
      { reason: err.reason },
    );
  }
  return {
    content: result.content,
    ...(result.structuredContent === undefined
      ? {}
      : { structuredContent: result.structuredContent }),
    isError: result.isError,
  };
}

const NO_SESSION: SessionFacts = { state: 'none', initialized: false };

/**
 * B0: forwards whatever arrives, as an unprotected server would: no protocol state, no session,
 * no grants, no handles, no decision audit. The endpoint still authenticates and bounds input.
 */
class NaiveEnforcement implements McpEnforcement {
  readonly label = 'naive';
  readonly ablations: readonly string[] = [];
  readonly opensSessions = false;
  readonly asksClient = false;

  constructor(private readonly parts: EnforcementParts) {}

  protocol(request: ProtocolRequest): Promise<ProtocolVerdict> {
    const method = request.message?.method;
    return Promise.resolve(
      method === 'initialize'
        ? {
            kind: 'initialize',
            revision: '2025-sessions',
            negotiatedVersion: '',
            session: NO_SESSION,
          }
        : { kind: 'proceed', revision: '2025-sessions', session: NO_SESSION, lifecycle: 'none' },
    );
  }

  admitInitialize(): void {}

  listTools(): Promise<Tool[]> {
    return Promise.resolve(
      this.parts.listings.allListed().map((l) => ({ ...l.tool, name: toolNameOf(l.capabilityId) })),
    );
  }

  callTool(_context: McpRequestContext, call: McpToolCall): Promise<CallToolResult> {
    return forward(this.parts, call);
  }
}

/**
 * B1, the connection-layer baseline as deployed in practice: the SDK's session checks, tool
 * descriptions through the linter, and a per-call prompt answered by the agent's own client.
 */
class ConnectionEnforcement implements McpEnforcement {
  readonly label = 'connection';
  readonly ablations: readonly string[] = [];
  readonly opensSessions = true;
  readonly asksClient = true;

  constructor(
    private readonly parts: EnforcementParts,
    private readonly gate: ConnectionGatePort,
  ) {}

  async protocol(request: ProtocolRequest): Promise<ProtocolVerdict> {
    const verdict = await this.parts.protocol.evaluate(request);
    if (verdict.kind !== 'refuse') return verdict;
    const reason = verdict.error.reason;
    // The SDK counts a session as initialized once initialize was answered.
    const lets =
      CONNECTION_MODE_IGNORES.has(reason) ||
      (reason === 'SESSION_NOT_INITIALIZED' && verdict.session.state === 'active');
    return lets ? proceed(verdict) : verdict;
  }

  admitInitialize(): void {}

  listTools(): Promise<Tool[]> {
    return Promise.resolve(
      this.parts.listings
        .all()
        .map((l) => ({ ...l.tool, name: toolNameOf(l.capabilityId) }))
        .filter((t) => !this.gate.flagged(t)),
    );
  }

  callTool(context: McpRequestContext, call: McpToolCall, ask: AskClient): Promise<CallToolResult> {
    return forward(this.parts, call, async (tool) => {
      const verdict = await this.gate.check({
        sessionId: context.session.id,
        tool,
        args: call.args,
        askClient: ask,
      });
      if (!verdict.allowed)
        throw new EdgeRpcError(EDGE_JSON_RPC_CODES.DENIED, verdict.message, {
          reason: verdict.reason,
        });
    });
  }
}
