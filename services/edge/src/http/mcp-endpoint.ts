import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  HcpError,
  type DenialReason,
  type EndpointFamily,
  type Principal,
  type SessionFacts,
} from '@hcp/core';
import { refuse, type AuditSink } from '@hcp/policy';
import { createLogger, type TokenVerifier } from '@hcp/platform';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  ElicitResultSchema,
  ListToolsRequestSchema,
  type JSONRPCMessage,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { authenticateBearer, type BearerChallengeOptions } from '../auth/authenticate';
import type { ProtocolState, ProtocolVerdict } from '../protocol/protocol-state';
import { SESSION_HEADER } from '../protocol/session-strategy';
import { PEEK_TOOL, PIPE_TOOL, capabilityIdOfToolName } from './tool-catalog';
import {
  HcpEnforcement,
  type ClientQuestion,
  type HcpEnforcementDeps,
  type McpEnforcement,
  type McpRequestContext,
} from './enforcement';
import {
  EDGE_JSON_RPC_CODES,
  EdgeRpcError,
  HTTP_LIMITS,
  HttpRefusal,
  acceptRefusal,
  hasTypedReason,
  readJsonRpcBody,
  requestIdOf,
  reservedArgumentPath,
  sendJsonRpcError,
  surfaceRefusalOf,
} from './json-rpc';

/** The `_meta` key a client puts an approval id under when it retries an approved call (I2). */
export const APPROVAL_META_KEY = 'hcp/approvalId';

/** What the MCP endpoint needs; the composition root (edge.ts) builds it from config. */
export interface McpEndpointDeps extends HcpEnforcementDeps {
  readonly verifier: TokenVerifier;
  /** Session lifecycle (open on initialize, settle after the request); protocol checks are the enforcement's. */
  readonly protocol: ProtocolState;
  /** Records the edge's own refusals (authentication, protocol state, input, the MCP surface). */
  readonly audit: AuditSink;
  /**
   * How requests are enforced; default HcpEnforcement over these deps. Only the benchmark's
   * composition root passes another (a measurement baseline or an ablation).
   */
  readonly enforcement?: McpEnforcement;
  readonly challenge?: BearerChallengeOptions;
  readonly serverInfo?: { readonly name: string; readonly version: string };
  readonly now?: () => number;
}

/** One refusal the endpoint makes itself, before or beside the enforcement. */
interface EndpointRefusal {
  readonly principal?: Principal;
  readonly session?: SessionFacts;
  readonly family: EndpointFamily;
  readonly reason: DenialReason;
  readonly check: string;
  readonly message: string;
  readonly traceId?: string;
  /** The capability a refused tools/call named, when it names one. */
  readonly capabilityId?: string;
}

const log = createLogger('McpEndpoint');

/** Idle SDK Servers kept for reuse; more are built while more requests are in flight. */
const IDLE_SERVERS_MAX = 64;

/** What the SDK hands a request handler (its `extra`). */
type RequestExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** The request as the SDK's Node transport reads it: `auth` becomes the handler's `extra.authInfo`. */
type RequestWithContext = IncomingMessage & { auth?: AuthInfo };

/** The key under which a request's context rides in `AuthInfo.extra`. */
const CONTEXT_KEY = 'hcpContext';

/**
 * Carries the request's context to the pooled Server's handlers: the transport passes `req.auth`
 * with each message as `extra.authInfo`. The token is never put there (the principal suffices).
 */
function contextCarrier(context: McpRequestContext): AuthInfo {
  return {
    token: '',
    clientId: context.principal.id,
    scopes: [],
    extra: { [CONTEXT_KEY]: context },
  };
}

/** The context a handler's message came with; a message without one is a wiring fault. */
function contextOf(authInfo: AuthInfo | undefined): McpRequestContext {
  const context = authInfo?.extra?.[CONTEXT_KEY];
  if (context === undefined) throw new Error('MCP request without its context');
  return context as McpRequestContext;
}

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

/**
 * The agent-facing MCP endpoint (`/mcp`, Streamable HTTP): every request is authenticated, its
 * input bounded, its protocol state checked (I8) and, for each message, handled by the SDK's
 * Server over a per-request stateless transport, with discovery and calls delegated to the
 * enforcement. Session state lives in the signed session id and the shared session marks, not in
 * this process, so any replica serves any session and a restart loses none. Every refusal it
 * answers carries a reason code of the closed set and is recorded through the one refusal path.
 */
export class McpEndpoint {
  private readonly now: () => number;
  private readonly enforcement: McpEnforcement;
  /** Per session, the in-flight requests that may be waiting for a client answer (asksClient). */
  private readonly asking = new Map<string, Set<StreamableHTTPServerTransport>>();
  /** Every request being served, so shutdown can end the long-lived GET streams. */
  private readonly live = new Set<StreamableHTTPServerTransport>();
  /** SDK Servers not serving a request now, built once and reconnected per request (ADR 0005 §3). */
  private readonly idleServers: Server[] = [];

  constructor(private readonly deps: McpEndpointDeps) {
    this.now = deps.now ?? Date.now;
    this.enforcement = deps.enforcement ?? new HcpEnforcement(deps);
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

  /**
   * Answers what Node's HTTP parser refuses before any handler runs (headers over the size
   * limit: 431; a malformed request line or header: 400; a request too slow: 408) with the same
   * typed JSON body as every other refusal, recorded with no principal: without this listener
   * Node closes the socket with a bare status line. Install it as the server's `clientError`.
   */
  answerClientError(err: Error & { readonly code?: string }, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, text] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
    const decisionId = this.recordRefusal({
      family: 'protocol',
      reason: 'INPUT_INVALID',
      check: 'input_bounds',
      message: `${text} (${err.code ?? 'unparsable request'})`,
    });
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: EDGE_JSON_RPC_CODES.BAD_REQUEST,
        message: text,
        data: { reason: 'INPUT_INVALID', decisionId },
      },
    });
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n` +
        `connection: close\r\n\r\n${body}`,
    );
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
      const decisionId = this.recordRefusal({
        family: 'protocol',
        reason: 'POLICY_UNAVAILABLE',
        check: 'mcp_server',
        message: 'the request could not be decided',
      });
      sendJsonRpcError(
        res,
        new HttpRefusal(500, EDGE_JSON_RPC_CODES.INTERNAL_ERROR, 'Internal error', {
          reason: 'POLICY_UNAVAILABLE',
          decisionId,
        }),
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
        ...(auth.error.principal === undefined ? {} : { principal: auth.error.principal }),
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
    if (method !== 'DELETE') {
      const notAcceptable = acceptRefusal(method, req.headers.accept);
      if (notAcceptable !== undefined)
        throw this.auditedInputRefusal(notAcceptable, principal, traceId);
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
      await this.post(req, res, principal, body, traceId);
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
    body: { readonly messages: JSONRPCMessage[]; readonly batch: boolean },
    traceId: string | undefined,
  ): Promise<void> {
    const { messages, batch } = body;
    const verdicts: ProtocolVerdict[] = [];
    for (const message of messages) {
      try {
        verdicts.push(await this.gate(req, principal, 'POST', message, traceId, batch));
      } catch (err) {
        if (err instanceof HttpRefusal) {
          sendJsonRpcError(res, err, requestIdOf(message));
          return;
        }
        throw err;
      }
    }
    for (const [i, message] of messages.entries()) {
      const reserved = reservedArgumentPath(message);
      if (reserved === undefined) continue;
      sendJsonRpcError(
        res,
        this.reservedArgumentRefusal(message, reserved, principal, verdicts[i]!.session, traceId),
        requestIdOf(message),
      );
      return;
    }
    // A client's answer to a question (elicitation) arrives as its own POST of JSON-RPC
    // responses; it belongs to the request still waiting on it, not to a new server.
    if (
      this.enforcement.asksClient &&
      messages.every((m) => !('method' in m)) &&
      this.deliverAnswers(verdicts[0]!.session.id, messages)
    ) {
      res.writeHead(202, { 'content-length': 0 });
      res.end();
      return;
    }
    const first = verdicts[0]!;
    const context: McpRequestContext = {
      principal,
      session: first.session,
      ...(traceId === undefined ? {} : { traceId }),
    };
    if (first.kind === 'initialize') {
      if (messages.length > 1) {
        throw this.auditedInputRefusal(
          new HttpRefusal(
            400,
            EDGE_JSON_RPC_CODES.INVALID_REQUEST,
            'initialize must be sent alone',
            { reason: 'INPUT_INVALID' },
          ),
          principal,
          traceId,
        );
      }
      if (!this.admitsInitialize(res, context, messages[0]!, first.negotiatedVersion)) return;
      if (this.enforcement.opensSessions) {
        const sessionId = await this.deps.protocol.openSession(
          principal.id,
          first.negotiatedVersion,
        );
        res.setHeader(SESSION_HEADER, sessionId);
      }
    }
    await this.serve(req, res, context, messages, first.kind === 'initialize');
    for (const verdict of verdicts) await this.deps.protocol.settle(verdict);
  }

  /**
   * Lets the enforcement admit an initialize (a discovery decision). False when it refused, the
   * refusal already answered as a JSON-RPC error with its reason and decision id.
   */
  private admitsInitialize(
    res: ServerResponse,
    context: McpRequestContext,
    message: JSONRPCMessage,
    negotiatedVersion: string,
  ): boolean {
    try {
      this.enforcement.admitInitialize(context, negotiatedVersion);
      return true;
    } catch (err) {
      const rpc = asRpcError(err);
      if (rpc === undefined) throw err;
      sendJsonRpcError(
        res,
        new HttpRefusal(200, rpc.code, rpc.message, rpc.data ?? { reason: 'POLICY_UNAVAILABLE' }),
        requestIdOf(message),
      );
      return false;
    }
  }

  /**
   * Protocol state for one message (or a GET/DELETE), as the enforcement decides it. A refusal is
   * recorded through the one refusal path and thrown as an HttpRefusal carrying its decision id.
   */
  private async gate(
    req: IncomingMessage,
    principal: Principal,
    httpMethod: 'POST' | 'GET' | 'DELETE',
    message: JSONRPCMessage | undefined,
    traceId: string | undefined,
    batch = false,
  ): Promise<Exclude<ProtocolVerdict, { kind: 'refuse' }>> {
    const verdict = await this.enforcement.protocol({
      httpMethod,
      ...(message === undefined
        ? {}
        : { message: message as { readonly method?: unknown; readonly params?: unknown } }),
      ...(batch ? { batch } : {}),
      headers: req.headers,
      principalId: principal.id,
    });
    if (verdict.kind !== 'refuse') return verdict;
    const reason = verdict.error.reason as DenialReason;
    const refusal = this.refusal({
      principal,
      session: verdict.session,
      family: 'protocol',
      reason,
      // A session of another principal is a breach of principal binding (I4), the rest of I8.
      check: reason === 'SESSION_FOREIGN' ? 'principal_binding' : 'protocol_state',
      message: verdict.error.message,
      ...(traceId === undefined ? {} : { traceId }),
    });
    throw new HttpRefusal(
      verdict.error.httpStatus,
      verdict.error.jsonRpcCode,
      verdict.error.message,
      {
        ...(verdict.error.data ?? {}),
        reason,
        decisionId: refusal.id,
        ...(refusal.invariant === undefined ? {} : { invariant: refusal.invariant }),
      },
    );
  }

  /**
   * Runs the messages through a pooled SDK Server on a fresh stateless transport (one per
   * request). The Server is leased for the life of the response and returned once its transport
   * closed; the request's context travels with the message (`extra.authInfo`), never on the
   * Server, so a handler still running after its response closed cannot see the next lease's.
   */
  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    context: McpRequestContext,
    messages: JSONRPCMessage[] | undefined,
    initialize = false,
  ): Promise<void> {
    const server = this.leaseServer();
    // A call that may ask its client needs the SSE form of the POST response to carry the
    // server's request; otherwise every answer is plain JSON.
    const asksClient = this.enforcement.asksClient;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: !asksClient,
    });
    this.typeOutgoingErrors(transport, context, messages ?? []);
    const sessionId = context.session.id;
    if (asksClient && sessionId !== undefined) this.trackAsking(sessionId, transport);
    this.live.add(transport);
    res.on('close', () => {
      this.live.delete(transport);
      if (asksClient && sessionId !== undefined) this.untrackAsking(sessionId, transport);
      void transport.close();
      void server
        .close()
        // A Server that answered initialize holds that client's capabilities: never reused.
        .then(() => (initialize ? undefined : this.returnServer(server)))
        .catch(() => undefined);
    });
    await server.connect(transport);
    const body =
      messages === undefined ? undefined : messages.length === 1 ? messages[0] : messages;
    (req as RequestWithContext).auth = contextCarrier(context);
    await transport.handleRequest(req, res, body);
  }

  /** An idle pooled Server, or a new one when every pooled one is serving. */
  private leaseServer(): Server {
    return this.idleServers.pop() ?? this.buildServer();
  }

  /** Back to the pool once disconnected (connect refuses a Server still holding a transport). */
  private returnServer(server: Server): void {
    if (server.transport === undefined && this.idleServers.length < IDLE_SERVERS_MAX)
      this.idleServers.push(server);
  }

  /**
   * The one place an error the SDK server made itself becomes a typed refusal: an unknown method
   * (-32601), params its schemas reject (-32602 with the field, never the zod dump as -32603), a
   * handler that threw something untyped. Each is recorded through the refusal path and carries
   * its decision id. Errors the enforcement raised already carry their reason and pass unchanged.
   */
  private typeOutgoingErrors(
    transport: StreamableHTTPServerTransport,
    context: McpRequestContext,
    messages: readonly JSONRPCMessage[],
  ): void {
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      if (!('error' in message) || hasTypedReason(message.error.data))
        return send(message, options);
      // A batch may repeat an id: the message that explains the error is the one that fails.
      const candidates = messages.filter(
        (m): m is Extract<JSONRPCMessage, { method: string; id: string | number }> =>
          'method' in m && 'id' in m && m.id === message.id,
      );
      const typed =
        candidates
          .map((m) => surfaceRefusalOf(m, message.error.code))
          .find((t) => t.check !== 'mcp_server') ??
        surfaceRefusalOf(candidates[0], message.error.code);
      if (typed.reason === 'POLICY_UNAVAILABLE')
        log.error({ error: message.error }, 'untyped error from the MCP server');
      const decisionId = this.recordRefusal({
        principal: context.principal,
        session: context.session,
        family: typed.family,
        reason: typed.reason,
        check: typed.check,
        message: typed.message,
        ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
      });
      return send(
        {
          jsonrpc: '2.0',
          id: message.id,
          error: {
            code: typed.code,
            message: typed.message,
            data: { ...typed.extra, reason: typed.reason, decisionId },
          },
        },
        options,
      );
    };
  }

  /** A Server with the handlers registered once; each reads its request's context from `extra`. */
  private buildServer(): Server {
    const server = new Server(this.deps.serverInfo ?? { name: 'hcp-edge', version: '0.1.0' }, {
      capabilities: { tools: { listChanged: false } },
      jsonSchemaValidator: ON_DEMAND_SCHEMA_VALIDATOR,
      instructions:
        'Tool outputs come back as handles (hdl_...). Use hcp_peek to preview one you own and hcp_pipe to pass one into another tool.',
    });
    server.setRequestHandler(ListToolsRequestSchema, async (_request, extra) => {
      const context = contextOf(extra.authInfo);
      try {
        return { tools: await this.enforcement.listTools(context) };
      } catch (err) {
        throw this.domainRefusal(err, context, 'tools/list');
      }
    });
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const context = contextOf(extra.authInfo);
      const approval = request.params._meta?.[APPROVAL_META_KEY];
      try {
        return await this.enforcement.callTool(
          context,
          {
            name: request.params.name,
            args: request.params.arguments ?? {},
            ...(typeof approval === 'string' && approval !== '' ? { approvalId: approval } : {}),
          },
          (question) => askByElicitation(extra, question),
        );
      } catch (err) {
        throw this.domainRefusal(err, context, 'tools/call');
      }
    });
    return server;
  }

  /**
   * A typed domain error (HcpError) that escaped the enforcement instead of arriving as its
   * refusal: recorded here with its own reason, so it still reaches the agent with a decision id.
   * Refusals the enforcement made (EdgeRpcError) and anything untyped pass unchanged (the latter
   * is typed and recorded on the way out, typeOutgoingErrors).
   */
  private domainRefusal(err: unknown, context: McpRequestContext, family: EndpointFamily): unknown {
    if (!(err instanceof HcpError) || err.reason === 'ALLOWED') return err;
    const refusal = this.refusal({
      principal: context.principal,
      session: context.session,
      family,
      reason: err.reason,
      check: 'edge',
      message: err.message,
      ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
    });
    return new EdgeRpcError(
      err.reason === 'INPUT_INVALID'
        ? EDGE_JSON_RPC_CODES.INVALID_PARAMS
        : EDGE_JSON_RPC_CODES.DENIED,
      err.message,
      {
        ...err.details,
        reason: err.reason,
        decisionId: refusal.id,
        ...(refusal.invariant === undefined ? {} : { invariant: refusal.invariant }),
      },
    );
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

  /**
   * A tools/call whose arguments hold a reserved key (`__proto__`): refused as INPUT_INVALID naming
   * the argument, as an undeclared argument is, before the SDK's parsing would silently drop it.
   */
  private reservedArgumentRefusal(
    message: JSONRPCMessage,
    field: string,
    principal: Principal,
    session: SessionFacts,
    traceId: string | undefined,
  ): HttpRefusal {
    const params = ('params' in message ? message.params : undefined) as
      { readonly name?: unknown } | undefined;
    const name = typeof params?.name === 'string' ? params.name : undefined;
    const capabilityId = name === undefined ? undefined : capabilityIdOfToolName(name);
    const text = `${field}: is not allowed (a reserved name no tool declares)`;
    const decisionId = this.recordRefusal({
      principal,
      session,
      family:
        name === PIPE_TOOL ? 'handle/pipe' : name === PEEK_TOOL ? 'handle/peek' : 'tools/call',
      reason: 'INPUT_INVALID',
      check: 'input_schema',
      message: text,
      ...(capabilityId === undefined ? {} : { capabilityId }),
      ...(traceId === undefined ? {} : { traceId }),
    });
    return new HttpRefusal(200, EDGE_JSON_RPC_CODES.INVALID_PARAMS, text, {
      reason: 'INPUT_INVALID',
      decisionId,
      field,
    });
  }

  /** An input-bounds refusal of an authenticated request, recorded, with its decision id added. */
  private auditedInputRefusal(
    refusal: HttpRefusal,
    principal: Principal,
    traceId: string | undefined,
  ): HttpRefusal {
    const decisionId = this.recordRefusal({
      principal,
      family: 'protocol',
      reason: refusal.data.reason as DenialReason,
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

  /** Records a refusal the endpoint made itself; returns the decision id the error carries. */
  private recordRefusal(input: EndpointRefusal): string {
    return this.refusal(input).id;
  }

  private refusal(input: EndpointRefusal): { readonly id: string; readonly invariant?: string } {
    const { decision, audited, auditError } = refuse(
      this.deps.audit,
      {
        reason: input.reason,
        check: input.check,
        explanation: input.message,
        decidedAt: this.now(),
        ablations: this.enforcement.ablations,
      },
      {
        endpointFamily: input.family,
        ...(input.principal === undefined ? {} : { principal: input.principal }),
        ...(input.session === undefined ? {} : { session: input.session }),
        ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
        ...(input.capabilityId === undefined ? {} : { capabilityId: input.capabilityId }),
      },
    );
    // The refusal stands either way; it is logged so the gap in the audit is visible.
    if (!audited)
      log.error(
        { err: auditError, decisionId: decision.id, reason: input.reason },
        'refusal not audited',
      );
    return decision;
  }
}

/** The JSON-RPC error an enforcement threw, if it is one (code, message, typed data). */
function asRpcError(
  err: unknown,
):
  | { code: number; message: string; data?: { reason: DenialReason } & Record<string, unknown> }
  | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, message, data } = err as { code?: unknown; message?: unknown; data?: unknown };
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return hasTypedReason(data)
    ? { code, message, data: data as { reason: DenialReason } & Record<string, unknown> }
    : { code, message };
}

function traceIdOf(req: IncomingMessage): string | undefined {
  const traceparent = req.headers.traceparent;
  if (typeof traceparent !== 'string') return undefined;
  const parts = traceparent.split('-');
  return parts.length >= 4 && /^[0-9a-f]{32}$/.test(parts[1]!) ? parts[1] : undefined;
}

/** How long a call waits for the client to answer its question. */
const ELICITATION_TIMEOUT_MS = 60_000;

/**
 * Asks the agent's own client about a call: an MCP elicitation sent on the stream of the call it
 * is about. Only an explicit accept with approve=true is a yes; a client without elicitation
 * answers with an error, which the asker treats as a refusal.
 */
async function askByElicitation(extra: RequestExtra, question: ClientQuestion): Promise<boolean> {
  // extra.sendRequest relates the question to its call and refuses once that call was closed.
  const result = await extra.sendRequest(
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
    { timeout: ELICITATION_TIMEOUT_MS },
  );
  return result.action === 'accept' && result.content?.['approve'] === true;
}
