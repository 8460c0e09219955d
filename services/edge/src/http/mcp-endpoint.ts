import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  newId,
  type Decision,
  type EndpointFamily,
  type Grant,
  type InvariantId,
  type Principal,
  type ReasonCode,
  type SessionFacts,
} from '@hcp/core';
import { auditEntryFor } from '@hcp/policy';
import { createLogger, type TokenVerifier } from '@hcp/platform';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import {
  CallToolRequestSchema,
  ElicitResultSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type JSONRPCMessage,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { authenticateBearer, type BearerChallengeOptions } from '../auth/authenticate';
import type { CallOutcome, CallService, PeekOutcome } from '../call/call.service';
import type { AskClient, ClientQuestion, ConnectionGate } from '../modes/connection-gate';
import type { EdgeMode } from '../modes/edge-mode';
import type { AuditPort, CallableCapability, UpstreamPort } from '../call/ports';
import type { ProtocolState, ProtocolVerdict } from '../protocol/protocol-state';
import { SESSION_HEADER } from '../protocol/session-strategy';
import {
  EDGE_JSON_RPC_CODES,
  HTTP_LIMITS,
  HttpRefusal,
  readJsonRpcBody,
  requestIdOf,
  sendJsonRpcError,
} from './json-rpc';
import type { ListingCache } from './tool-catalog';
import {
  BUILTIN_TOOLS,
  PEEK_TOOL,
  PIPE_TOOL,
  capabilityIdOfToolName,
  peekArguments,
  pipeArguments,
  toolNameOf,
  visibleTools,
} from './tool-catalog';

/** The `_meta` key a client puts an approval id under when it retries an approved call (I2). */
export const APPROVAL_META_KEY = 'hcp/approvalId';

/** What the MCP endpoint needs; the composition root (edge.ts) builds it from config. */
export interface McpEndpointDeps {
  readonly verifier: TokenVerifier;
  readonly protocol: ProtocolState;
  readonly calls: Pick<CallService, 'callTool' | 'peek' | 'pipe'>;
  /** The tools each provider currently lists (for tools/list and observed digests). */
  readonly listings: ListingCache;
  /** The manifest entries (pinned digests) the grant-store holds. */
  readonly manifest: { all(): Promise<readonly CallableCapability[]> };
  /** The principal's grants, for discovery filtering only. */
  readonly grants: { grantsOf(principalId: string): Promise<readonly Grant[]> };
  /** Records the edge's own refusals (authentication, protocol state). */
  readonly audit: AuditPort;
  /** Direct upstream access for the measurement modes (naive, connection). */
  readonly upstream: UpstreamPort;
  readonly mode: EdgeMode;
  /** Ablation switches (benchmark only); the protocol layer honours the I4/I8 ones. */
  readonly ablations: ReadonlySet<string>;
  /** Decides whether a connection-mode call may run (description lint, session, per-call prompt). */
  readonly connectionGate?: ConnectionGatePort;
  readonly challenge?: BearerChallengeOptions;
  readonly serverInfo?: { readonly name: string; readonly version: string };
  readonly now?: () => number;
}

/**
 * The connection-layer baseline (B1): which tools the linter hides, and its per-call check
 * (session present, tool not flagged, the client's yes); absent in hcp and naive modes.
 */
export type ConnectionGatePort = Pick<ConnectionGate, 'flagged' | 'check'>;

/** Which ablation switch turns each protocol refusal into a pass (mirrors the engine's checks). */
const PROTOCOL_ABLATION: Partial<Record<ReasonCode, string>> = {
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

const INVARIANT_OF: Partial<Record<ReasonCode, InvariantId>> = {
  PRINCIPAL_UNAUTHENTICATED: 'I4',
  SESSION_FOREIGN: 'I4',
  SESSION_NOT_INITIALIZED: 'I8',
  SESSION_UNKNOWN: 'I8',
  SESSION_EXPIRED: 'I8',
  PROTOCOL_VERSION_UNSUPPORTED: 'I8',
  PROTOCOL_VERSION_MISMATCH: 'I8',
  AUDIT_UNAVAILABLE: 'I7',
};

const log = createLogger('McpEndpoint');

/**
 * The per-request SDK Server builds a fresh Ajv instance unless handed a validator (~370 µs per
 * request in the profile), yet only uses it to check elicitation answers (the connection
 * baseline). This one creates the Ajv instance only when a schema is asked for, and a fresh one
 * each time, so a shared instance never accumulates the per-call schemas (Ajv caches every
 * compiled schema object) and behaviour is the SDK default's.
 */
const ON_DEMAND_SCHEMA_VALIDATOR: jsonSchemaValidator = {
  getValidator: (schema) => new AjvJsonSchemaValidator().getValidator(schema),
};

/** The context one HTTP request runs in, once authenticated and past protocol state. */
interface RequestContext {
  readonly principal: Principal;
  readonly session: SessionFacts;
  readonly traceId?: string;
}

/**
 * The agent-facing MCP endpoint (`/mcp`, Streamable HTTP): every request is authenticated, its
 * protocol state checked (I8) and, for each message, handled by the SDK's Server over a per-request
 * stateless transport. Session state lives in the signed session id and the shared session marks,
 * not in this process, so any replica serves any session and a restart loses none (issue 5, item 1).
 */
export class McpEndpoint {
  private readonly now: () => number;
  /** connection mode: per session, the in-flight requests that may be waiting for a client answer. */
  private readonly asking = new Map<string, Set<StreamableHTTPServerTransport>>();
  /** Every request being served, so shutdown can end the long-lived GET streams. */
  private readonly live = new Set<StreamableHTTPServerTransport>();

  constructor(private readonly deps: McpEndpointDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Ends every open stream (GET streams never end on their own) so the HTTP server can close;
   * clients reconnect to another replica or after the restart with the same signed session.
   */
  async shutdown(): Promise<void> {
    const open = [...this.live];
    this.live.clear();
    await Promise.all(open.map((t) => t.close().catch(() => undefined)));
  }

  /** Handles one request on /mcp; never throws (every failure is a typed JSON-RPC error). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.dispatch(req, res);
    } catch (err) {
      if (err instanceof HttpRefusal) {
        sendJsonRpcError(res, err);
        return;
      }
      log.error({ err }, 'mcp request failed');
      sendJsonRpcError(
        res,
        new HttpRefusal(500, -32603, 'Internal error', { reason: 'POLICY_UNAVAILABLE' }),
      );
    }
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method;
    const traceId = traceIdOf(req);
    const auth = await authenticateBearer(
      req.headers.authorization,
      this.deps.verifier,
      this.deps.challenge,
    );
    if (!auth.ok) {
      const decisionId = this.recordRefusal({
        session: { state: 'none', initialized: false },
        family: 'protocol',
        reason: 'PRINCIPAL_UNAUTHENTICATED',
        check: 'authentication',
        message: auth.error.message,
        ...(traceId === undefined ? {} : { traceId }),
      });
      throw new HttpRefusal(
        401,
        auth.error.jsonRpcCode,
        auth.error.message,
        { reason: 'PRINCIPAL_UNAUTHENTICATED', decisionId, invariant: 'I4' },
        { 'www-authenticate': auth.error.wwwAuthenticate },
      );
    }
    const principal = auth.principal;
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      // Authenticated first like every method, then refused and audited like any bad input.
      throw this.auditedInputRefusal(
        new HttpRefusal(
          405,
          EDGE_JSON_RPC_CODES.BAD_REQUEST,
          'Method Not Allowed',
          { reason: 'INPUT_INVALID' },
          { allow: 'GET, POST, DELETE' },
        ),
        principal,
        traceId,
      );
    }

    if (method === 'POST') {
      let body: Awaited<ReturnType<typeof readJsonRpcBody>>;
      try {
        body = await readJsonRpcBody(req, HTTP_LIMITS);
      } catch (err) {
        // A body refused for its form or size is still a refusal of a known principal: audited,
        // so the decision id in the error finds it like any other denial.
        throw err instanceof HttpRefusal ? this.auditedInputRefusal(err, principal, traceId) : err;
      }
      await this.post(req, res, principal, body.messages, traceId);
      return;
    }
    const verdict = await this.gate(req, principal, method, undefined, traceId);
    if (method === 'DELETE') {
      await this.deps.protocol.settle(verdict);
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      return;
    }
    // GET opens the stream for server-initiated messages; the SDK transport serves it.
    await this.serve(req, res, { principal, session: verdict.session, traceId }, undefined);
  }

  private async post(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    messages: JSONRPCMessage[],
    traceId: string | undefined,
  ): Promise<void> {
    const verdicts: ProtocolVerdict[] = [];
    for (const message of messages) {
      try {
        verdicts.push(await this.gate(req, principal, 'POST', message, traceId));
      } catch (err) {
        if (err instanceof HttpRefusal) {
          sendJsonRpcError(res, err, requestIdOf(message));
          return;
        }
        throw err;
      }
    }
    // The connection baseline: a client's answer to an elicitation arrives as its own POST of
    // JSON-RPC responses; it belongs to the request still waiting on it, not to a new server.
    if (
      this.deps.mode === 'connection' &&
      messages.every((m) => !('method' in m)) &&
      this.deliverAnswers(verdicts[0]!.session.id, messages)
    ) {
      res.writeHead(202, { 'content-length': 0 });
      res.end();
      return;
    }
    const first = verdicts[0]!;
    if (first.kind === 'initialize') {
      if (messages.length > 1) {
        throw new HttpRefusal(
          400,
          EDGE_JSON_RPC_CODES.INVALID_REQUEST,
          'initialize must be sent alone',
          {
            reason: 'INPUT_INVALID',
          },
        );
      }
      // naive mode mints no session: it forwards whatever arrives, as an unprotected server would.
      if (this.deps.mode !== 'naive') {
        const sessionId = await this.deps.protocol.openSession(
          principal.id,
          first.negotiatedVersion,
        );
        res.setHeader(SESSION_HEADER, sessionId);
      }
    }
    await this.serve(req, res, { principal, session: first.session, traceId }, messages);
    for (const verdict of verdicts) await this.deps.protocol.settle(verdict);
  }

  /**
   * Protocol state for one message (or a GET/DELETE). A refusal is audited and thrown as an
   * HttpRefusal, unless the mode or an ablation switch lets it through.
   */
  private async gate(
    req: IncomingMessage,
    principal: Principal,
    httpMethod: 'POST' | 'GET' | 'DELETE',
    message: JSONRPCMessage | undefined,
    traceId: string | undefined,
  ): Promise<Exclude<ProtocolVerdict, { kind: 'refuse' }>> {
    if (this.deps.mode === 'naive') {
      const method = message !== undefined && 'method' in message ? message.method : undefined;
      return method === 'initialize'
        ? {
            kind: 'initialize',
            revision: '2025-sessions',
            negotiatedVersion: '',
            session: { state: 'none', initialized: false },
          }
        : {
            kind: 'proceed',
            revision: '2025-sessions',
            session: { state: 'none', initialized: false },
            lifecycle: 'none',
          };
    }
    const verdict = await this.deps.protocol.evaluate({
      httpMethod,
      ...(message === undefined
        ? {}
        : { message: message as { readonly method?: unknown; readonly params?: unknown } }),
      headers: req.headers,
      principalId: principal.id,
    });
    if (verdict.kind !== 'refuse') return verdict;
    const reason = verdict.error.reason;
    const ablation = PROTOCOL_ABLATION[reason];
    const letThrough =
      (ablation !== undefined && this.deps.ablations.has(ablation)) ||
      (this.deps.mode === 'connection' && connectionModeLets(reason, verdict.session));
    if (letThrough) {
      return {
        kind: 'proceed',
        revision: verdict.revision,
        session: verdict.session,
        lifecycle: 'none',
      };
    }
    const invariant = INVARIANT_OF[reason];
    const decisionId = this.recordRefusal({
      principal,
      session: verdict.session,
      family: 'protocol',
      reason,
      check: 'protocol_state',
      message: verdict.error.message,
      ...(invariant === undefined ? {} : { invariant }),
      ...(traceId === undefined ? {} : { traceId }),
    });
    throw new HttpRefusal(
      verdict.error.httpStatus,
      verdict.error.jsonRpcCode,
      verdict.error.message,
      {
        reason,
        decisionId,
        ...(invariant === undefined ? {} : { invariant }),
        ...(verdict.error.data ?? {}),
      },
    );
  }

  /** Runs the messages through a fresh SDK Server on a stateless transport (one per request). */
  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    context: RequestContext,
    messages: JSONRPCMessage[] | undefined,
  ): Promise<void> {
    const server = this.buildServer(context);
    // The connection baseline asks the client per call (elicitation), which needs the SSE form of
    // the POST response to carry the server's request; every other mode answers with plain JSON.
    const asksClient = this.deps.mode === 'connection';
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: !asksClient,
    });
    const sessionId = context.session.id;
    if (asksClient && sessionId !== undefined) this.trackAsking(sessionId, transport);
    this.live.add(transport);
    res.on('close', () => {
      this.live.delete(transport);
      if (asksClient && sessionId !== undefined) this.untrackAsking(sessionId, transport);
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    const body =
      messages === undefined ? undefined : messages.length === 1 ? messages[0] : messages;
    await transport.handleRequest(req, res, body);
  }

  private buildServer(context: RequestContext): Server {
    const server = new Server(this.deps.serverInfo ?? { name: 'hcp-edge', version: '0.1.0' }, {
      capabilities: { tools: { listChanged: false } },
      jsonSchemaValidator: ON_DEMAND_SCHEMA_VALIDATOR,
      instructions:
        'Tool outputs come back as handles (hdl_...). Use hcp_peek to preview one you own and hcp_pipe to pass one into another tool.',
    });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: await this.listTools(context),
    }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const name = request.params.name;
      const args = request.params.arguments ?? {};
      if (this.deps.mode !== 'hcp') {
        return this.forward(context, name, args, (question) =>
          askByElicitation(server, question, extra.requestId),
        );
      }
      const meta = request.params._meta;
      const approval = meta?.[APPROVAL_META_KEY];
      const approvalId = typeof approval === 'string' && approval !== '' ? approval : undefined;
      return this.callTool(context, name, args, approvalId);
    });
    return server;
  }

  private async listTools(context: RequestContext): Promise<Tool[]> {
    const listed = this.deps.listings.all();
    if (this.deps.mode !== 'hcp') {
      const tools = listed.map((l) => ({ ...l.tool, name: toolNameOf(l.capabilityId) }));
      const gate = this.deps.connectionGate;
      return this.deps.mode === 'connection' && gate !== undefined
        ? tools.filter((t) => !gate.flagged(t))
        : tools;
    }
    const [manifest, grants] = await Promise.all([
      this.deps.manifest.all(),
      this.deps.grants.grantsOf(context.principal.id),
    ]);
    return visibleTools({
      listed,
      manifest: new Map(manifest.map((m) => [m.capability.id, m])),
      grants,
      now: this.now(),
    });
  }

  private async callTool(
    context: RequestContext,
    name: string,
    args: Record<string, unknown>,
    approvalId: string | undefined,
  ): Promise<CallToolResult> {
    const base = {
      principal: context.principal,
      session: context.session,
      ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
    };
    if (name === PEEK_TOOL) {
      const parsed = peekArguments.safeParse(args);
      if (!parsed.success) throw invalidParams(PEEK_TOOL, parsed.error);
      const outcome = await this.deps.calls.peek({
        ...base,
        handleId: parsed.data.handle,
        ...(parsed.data.maxBytes === undefined ? {} : { maxBytes: parsed.data.maxBytes }),
      });
      return peekResult(outcome);
    }
    if (name === PIPE_TOOL) {
      const parsed = pipeArguments.safeParse(args);
      if (!parsed.success) throw invalidParams(PIPE_TOOL, parsed.error);
      const target = capabilityIdOfToolName(parsed.data.tool) ?? parsed.data.tool;
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
    // An unknown name still goes to the decision point, which denies and audits it (I1).
    const capabilityId = capabilityIdOfToolName(name) ?? name;
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

  /** The measurement modes: the upstream output goes straight back to the agent. */
  private async forward(
    context: RequestContext,
    name: string,
    args: Record<string, unknown>,
    askClient: AskClient,
  ): Promise<CallToolResult> {
    if (BUILTIN_TOOLS.some((t) => t.name === name)) {
      throw new EdgeRpcError(
        EDGE_JSON_RPC_CODES.INVALID_PARAMS,
        `${name} exists only in hcp mode`,
        {
          reason: 'CAPABILITY_UNKNOWN',
        },
      );
    }
    const capabilityId = capabilityIdOfToolName(name);
    const listed = capabilityId === undefined ? undefined : this.deps.listings.get(capabilityId);
    if (capabilityId === undefined || listed === undefined) {
      throw new EdgeRpcError(EDGE_JSON_RPC_CODES.INVALID_PARAMS, `unknown tool ${name}`, {
        reason: 'CAPABILITY_UNKNOWN',
      });
    }
    const gate = this.deps.connectionGate;
    if (this.deps.mode === 'connection' && gate !== undefined) {
      const verdict = await gate.check({
        sessionId: context.session.id,
        tool: { ...listed.tool, name },
        args,
        askClient,
      });
      if (!verdict.allowed) throw denied(verdict.reason, verdict.message);
    }
    const result = await this.deps.upstream.callTool(capabilityId, args);
    return {
      content: result.content,
      ...(result.structuredContent === undefined
        ? {}
        : { structuredContent: result.structuredContent }),
      isError: result.isError,
    };
  }

  private trackAsking(sessionId: string, transport: StreamableHTTPServerTransport): void {
    let set = this.asking.get(sessionId);
    if (set === undefined) {
      set = new Set();
      this.asking.set(sessionId, set);
    }
    set.add(transport);
  }

  private untrackAsking(sessionId: string, transport: StreamableHTTPServerTransport): void {
    const set = this.asking.get(sessionId);
    set?.delete(transport);
    if (set?.size === 0) this.asking.delete(sessionId);
  }

  /**
   * Hands client answers to the requests of the same session that may wait on them. Each
   * per-request server ignores answers to ids it did not ask; true when some request was open.
   */
  private deliverAnswers(sessionId: string | undefined, messages: JSONRPCMessage[]): boolean {
    const waiting = sessionId === undefined ? undefined : this.asking.get(sessionId);
    if (waiting === undefined || waiting.size === 0) return false;
    for (const transport of waiting) for (const message of messages) transport.onmessage?.(message);
    return true;
  }

  /** An input-bounds refusal of an authenticated request, recorded, with its decision id added. */
  private auditedInputRefusal(
    refusal: HttpRefusal,
    principal: Principal,
    traceId: string | undefined,
  ): HttpRefusal {
    const decisionId = this.recordRefusal({
      principal,
      session: { state: 'none', initialized: false },
      family: 'protocol',
      reason: refusal.data.reason,
      check: 'input_bounds',
      message: refusal.message,
      ...(traceId === undefined ? {} : { traceId }),
    });
    return new HttpRefusal(
      refusal.httpStatus,
      refusal.jsonRpcCode,
      refusal.message,
      { ...refusal.data, decisionId },
      refusal.headers,
    );
  }

  /** Records a refusal the edge made itself; returns the decision id the error carries. */
  private recordRefusal(input: {
    readonly principal?: Principal;
    readonly session: SessionFacts;
    readonly family: EndpointFamily;
    readonly reason: ReasonCode;
    readonly check: string;
    readonly message: string;
    readonly invariant?: InvariantId;
    readonly traceId?: string;
  }): string {
    const decision: Decision = {
      id: newId('dec'),
      outcome: 'deny',
      reason: input.reason,
      check: input.check,
      explanation: input.message,
      decidedAt: this.now(),
      ablations: [...this.deps.ablations],
      ...(input.invariant === undefined ? {} : { invariant: input.invariant }),
    };
    const entry = auditEntryFor(
      {
        ...(input.principal === undefined ? {} : { principal: input.principal }),
        session: input.session,
        now: decision.decidedAt,
        ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
      },
      decision,
      { endpointFamily: input.family },
    );
    try {
      this.deps.audit.record(entry);
    } catch (err) {
      // The refusal stands either way; it is logged so the gap in the audit is visible.
      log.error({ err, decisionId: decision.id, reason: input.reason }, 'refusal not audited');
    }
    return decision.id;
  }
}

/** Whether the B1 baseline lets a refusal through (see CONNECTION_MODE_IGNORES). */
function connectionModeLets(reason: ReasonCode, session: SessionFacts): boolean {
  if (CONNECTION_MODE_IGNORES.has(reason)) return true;
  // The SDK counts a session as initialized once initialize was answered.
  return reason === 'SESSION_NOT_INITIALIZED' && session.state === 'active';
}

function traceIdOf(req: IncomingMessage): string | undefined {
  const traceparent = req.headers.traceparent;
  if (typeof traceparent !== 'string') return undefined;
  const parts = traceparent.split('-');
  return parts.length >= 4 && /^[0-9a-f]{32}$/.test(parts[1]!) ? parts[1] : undefined;
}

function invalidParams(tool: string, error: z.ZodError): EdgeRpcError {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(arguments)';
  return new EdgeRpcError(
    EDGE_JSON_RPC_CODES.INVALID_PARAMS,
    `${tool}: ${field}: ${issue?.message ?? 'invalid'}`,
    {
      reason: 'INPUT_INVALID',
      field,
    },
  );
}

function denied(
  reason: ReasonCode,
  message: string,
  extra: Record<string, unknown> = {},
): EdgeRpcError {
  return new EdgeRpcError(EDGE_JSON_RPC_CODES.DENIED, message, { reason, ...extra });
}

/** A refusal as the JSON-RPC error the agent sees: reason code, decision id, no secrets. */
function refusalError(
  outcome: Extract<CallOutcome | PeekOutcome, { kind: 'refused' }>,
): EdgeRpcError {
  const code =
    outcome.reason === 'INPUT_INVALID'
      ? EDGE_JSON_RPC_CODES.INVALID_PARAMS
      : EDGE_JSON_RPC_CODES.DENIED;
  const data: Record<string, unknown> = { reason: outcome.reason };
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

/**
 * A JSON-RPC error as the SDK server sends it (code, message, data). Not McpError: that one
 * prefixes "MCP error <code>:" to the message, which the client's McpError then prefixes again.
 */
class EdgeRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'EdgeRpcError';
  }
}

/** How long the connection baseline waits for the client to answer its per-call prompt. */
const ELICITATION_TIMEOUT_MS = 60_000;

/**
 * The connection baseline's per-call prompt: an MCP elicitation sent to the agent's own client on
 * the stream of the call it is about. Only an explicit accept with approve=true is a yes; a client
 * without elicitation answers with an error, which the gate treats as a refusal.
 */
async function askByElicitation(
  server: Server,
  question: ClientQuestion,
  relatedRequestId: string | number,
): Promise<boolean> {
  const result = await server.request(
    {
      method: 'elicitation/create',
      params: {
        message: question.message,
        requestedSchema: {
          type: 'object',
          properties: { approve: { type: 'boolean', title: `Run ${question.tool}?` } },
          required: ['approve'],
        },
      },
    },
    ElicitResultSchema,
    { relatedRequestId, timeout: ELICITATION_TIMEOUT_MS },
  );
  return result.action === 'accept' && result.content?.['approve'] === true;
}
