import type { IncomingMessage, ServerResponse } from 'node:http';
import { isReasonCode, type DenialReason, type EndpointFamily, type ReasonCode } from '@hcp/core';
import {
  CallToolRequestSchema,
  InitializeRequestSchema,
  JSONRPCMessageSchema,
  ListToolsRequestSchema,
  PingRequestSchema,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';

/** Bounds of one HTTP request to /mcp, checked before any JSON-RPC handling. */
export const HTTP_LIMITS = {
  /** Largest POST body; tool arguments are bounded to 256 KiB inside it. */
  maxBodyBytes: 1024 * 1024,
  /** Most messages in one JSON-RPC batch (2025-03-26 clients only). */
  maxBatchMessages: 32,
  /** A body that is not fully received within this time is refused. */
  bodyTimeoutMs: 10_000,
} as const;

/**
 * JSON-RPC codes of the edge's own refusals. A policy denial is -32003 (an implementation-defined
 * server error, JSON-RPC 2.0 §5.1) with the reason code in `data.reason`; malformed input keeps
 * the standard codes so generic clients understand it.
 */
export const EDGE_JSON_RPC_CODES = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  BAD_REQUEST: -32000,
  DENIED: -32003,
} as const;

/** What the `data` of every refusal carries: the reason code and what links it to the audit. */
export interface RefusalData {
  readonly reason: ReasonCode;
  readonly decisionId?: string;
  readonly invariant?: string;
  readonly [key: string]: unknown;
}

/** A refusal answered at the HTTP level, before the request reached the MCP server. */
export class HttpRefusal extends Error {
  constructor(
    readonly httpStatus: number,
    readonly jsonRpcCode: number,
    message: string,
    readonly data: RefusalData,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpRefusal';
  }
}

/**
 * A JSON-RPC error as the SDK server sends it (code, message, data). Not McpError: that one
 * prefixes "MCP error <code>:" to the message, which the client's McpError then prefixes again.
 */
export class EdgeRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: RefusalData,
  ) {
    super(message);
    this.name = 'EdgeRpcError';
  }
}

/** Writes a JSON-RPC error response; `id` is null when the request's id is unknown. */
export function sendJsonRpcError(
  res: ServerResponse,
  refusal: HttpRefusal,
  id: string | number | null = null,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: { code: refusal.jsonRpcCode, message: refusal.message, data: refusal.data },
  });
  res.writeHead(refusal.httpStatus, {
    ...refusal.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

function inputInvalid(status: number, code: number, message: string): HttpRefusal {
  return new HttpRefusal(status, code, message, { reason: 'INPUT_INVALID' });
}

/** True for `application/json` with optional parameters (charset), case-insensitive. */
function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  return value.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/**
 * Reads and parses a POST body within HTTP_LIMITS: wrong content type (415), too large (413),
 * too slow (408), not JSON (-32700) and not JSON-RPC (-32600) are HttpRefusals; nothing partial
 * is ever handed on.
 */
export async function readJsonRpcBody(
  req: IncomingMessage,
  limits: { readonly maxBodyBytes: number; readonly bodyTimeoutMs: number } = HTTP_LIMITS,
): Promise<{ readonly messages: JSONRPCMessage[]; readonly batch: boolean }> {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw inputInvalid(
      415,
      EDGE_JSON_RPC_CODES.BAD_REQUEST,
      'Unsupported Media Type: Content-Type must be application/json',
    );
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limits.maxBodyBytes) {
    throw inputInvalid(
      413,
      EDGE_JSON_RPC_CODES.BAD_REQUEST,
      `Payload Too Large: the body exceeds ${limits.maxBodyBytes} bytes`,
    );
  }
  const raw = await readBounded(req, limits);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw inputInvalid(400, EDGE_JSON_RPC_CODES.PARSE_ERROR, 'Parse error: the body is not JSON');
  }
  const batch = Array.isArray(parsed);
  const items: unknown[] = batch ? (parsed as unknown[]) : [parsed];
  if (items.length === 0 || items.length > HTTP_LIMITS.maxBatchMessages) {
    throw inputInvalid(
      400,
      EDGE_JSON_RPC_CODES.INVALID_REQUEST,
      `Invalid Request: a batch holds 1 to ${HTTP_LIMITS.maxBatchMessages} messages`,
    );
  }
  const messages: JSONRPCMessage[] = [];
  for (const item of items) {
    const result = JSONRPCMessageSchema.safeParse(item);
    if (!result.success) {
      throw inputInvalid(
        400,
        EDGE_JSON_RPC_CODES.INVALID_REQUEST,
        'Invalid Request: not a JSON-RPC 2.0 message',
      );
    }
    messages.push(result.data);
  }
  return { messages, batch };
}

function readBounded(
  req: IncomingMessage,
  limits: { readonly maxBodyBytes: number; readonly bodyTimeoutMs: number },
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: HttpRefusal | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err === undefined) resolve(Buffer.concat(chunks, size));
      else {
        // Stop reading; the response still goes out on this connection, which then closes.
        req.resume();
        reject(err);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBodyBytes) {
        finish(
          inputInvalid(
            413,
            EDGE_JSON_RPC_CODES.BAD_REQUEST,
            `Payload Too Large: the body exceeds ${limits.maxBodyBytes} bytes`,
          ),
        );
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = () =>
      finish(inputInvalid(400, EDGE_JSON_RPC_CODES.BAD_REQUEST, 'the request body was aborted'));
    const timer = setTimeout(
      () =>
        finish(
          inputInvalid(408, EDGE_JSON_RPC_CODES.BAD_REQUEST, 'Request Timeout: body too slow'),
        ),
      limits.bodyTimeoutMs,
    );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** The id of a message when it is a request (responses and notifications have none to answer). */
export function requestIdOf(message: JSONRPCMessage | undefined): string | number | null {
  if (message !== undefined && 'method' in message && 'id' in message) return message.id;
  return null;
}

/**
 * Object keys a tool argument may never have at any depth. JSON.parse keeps `__proto__` as an own
 * key, but the SDK's schemas drop it and an assignment turns it into a prototype, so it would
 * vanish between what the agent sent and what was decided. (`constructor` and `prototype` survive
 * parsing as ordinary keys and are refused like any other undeclared argument.)
 */
const RESERVED_ARGUMENT_KEYS: ReadonlySet<string> = new Set(['__proto__']);

/**
 * The path of the first reserved key in a tools/call's arguments (`arguments.a.__proto__`), or
 * undefined. Walks with an explicit stack and builds a path only for a hit, so a deep body costs
 * linear time and cannot overflow the call stack.
 */
export function reservedArgumentPath(message: JSONRPCMessage): string | undefined {
  if (!('method' in message) || message.method !== 'tools/call') return undefined;
  const params = message.params;
  interface Node {
    readonly value: unknown;
    readonly key: string;
    readonly parent?: Node;
  }
  const pathOf = (node: Node): string => {
    const keys: string[] = [];
    for (let n: Node | undefined = node; n !== undefined; n = n.parent) keys.push(n.key);
    return echo(keys.reverse().join('.'));
  };
  const stack: Node[] = [
    { value: params === undefined ? undefined : ownValue(params, 'arguments'), key: 'arguments' },
  ];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const value = node.value;
    if (typeof value !== 'object' || value === null) continue;
    for (const key of Object.keys(value)) {
      const child: Node = {
        value: ownValue(value as Record<string, unknown>, key),
        key,
        parent: node,
      };
      if (!Array.isArray(value) && RESERVED_ARGUMENT_KEYS.has(key)) return pathOf(child);
      stack.push(child);
    }
  }
  return undefined;
}

function ownValue(value: Record<string, unknown>, key: string): unknown {
  return Object.getOwnPropertyDescriptor(value, key)?.value;
}

/**
 * The requests the edge's MCP server answers, with the SDK's own schemas for them. A request for
 * any other method is refused as -32601; one whose params do not fit is -32602.
 */
const SERVED_REQUESTS = new Map<string, { safeParse(value: unknown): ZodResultLike }>([
  ['initialize', InitializeRequestSchema],
  ['ping', PingRequestSchema],
  ['tools/list', ListToolsRequestSchema],
  ['tools/call', CallToolRequestSchema],
]);

interface ZodResultLike {
  readonly success: boolean;
  readonly error?: {
    readonly issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[];
  };
}

/** Longest method name or field path echoed back in an error (they are caller input). */
const MAX_ECHO_CHARS = 128;

const echo = (text: string) =>
  text.length > MAX_ECHO_CHARS ? `${text.slice(0, MAX_ECHO_CHARS - 1)}…` : text;

/** Why the SDK-level surface refused one request: the typed error the agent gets, and what to record. */
export interface SurfaceRefusal {
  readonly code: number;
  readonly message: string;
  readonly reason: DenialReason;
  readonly family: EndpointFamily;
  /** The check named in the audit entry. */
  readonly check: 'mcp_method' | 'mcp_params' | 'mcp_server';
  readonly extra: Readonly<Record<string, unknown>>;
}

/**
 * Types an error the SDK server produced itself (unknown method, params its schemas reject, a
 * handler that threw something untyped), from the request it answers. Unknown methods are
 * INPUT_INVALID, not CAPABILITY_UNKNOWN: a JSON-RPC method is not a capability, and
 * CAPABILITY_UNKNOWN names I1 (the manifest), which would send an audit reader looking for a tool.
 * Params are re-checked with the SDK's own schema so the error names the field instead of
 * carrying the SDK's zod dump.
 */
export function surfaceRefusalOf(
  request: { readonly method: string; readonly params?: unknown } | undefined,
  sdkCode: number,
): SurfaceRefusal {
  const method = request?.method;
  const family = familyOf(method);
  const schema = method === undefined ? undefined : SERVED_REQUESTS.get(method);
  if (method !== undefined && schema === undefined) {
    return {
      code: EDGE_JSON_RPC_CODES.METHOD_NOT_FOUND,
      message: `Method not found: ${echo(method)}`,
      reason: 'INPUT_INVALID',
      family,
      check: 'mcp_method',
      extra: { method: echo(method) },
    };
  }
  const parsed = schema?.safeParse(request);
  if (parsed !== undefined && !parsed.success) {
    const issue = parsed.error?.issues[0];
    const field = echo(
      issue !== undefined && issue.path.length > 0 ? issue.path.map(String).join('.') : 'params',
    );
    return {
      code: EDGE_JSON_RPC_CODES.INVALID_PARAMS,
      message: `Invalid params: ${echo(method ?? '')} ${field}: ${echo(issue?.message ?? 'invalid')}`,
      reason: 'INPUT_INVALID',
      family,
      check: 'mcp_params',
      extra: { field },
    };
  }
  if (
    sdkCode === EDGE_JSON_RPC_CODES.INVALID_PARAMS ||
    sdkCode === EDGE_JSON_RPC_CODES.INVALID_REQUEST
  ) {
    return {
      code: sdkCode,
      message: 'Invalid params',
      reason: 'INPUT_INVALID',
      family,
      check: 'mcp_params',
      extra: {},
    };
  }
  // Not the caller's input: something in the server failed; the call was not decided.
  return {
    code: EDGE_JSON_RPC_CODES.INTERNAL_ERROR,
    message: 'Internal error: the request could not be decided',
    reason: 'POLICY_UNAVAILABLE',
    family,
    check: 'mcp_server',
    extra: {},
  };
}

function familyOf(method: string | undefined): EndpointFamily {
  return method === 'tools/call'
    ? 'tools/call'
    : method === 'tools/list'
      ? 'tools/list'
      : 'protocol';
}

/** True when an error object already carries a reason code of the closed set. */
export function hasTypedReason(data: unknown): boolean {
  return (
    typeof data === 'object' && data !== null && isReasonCode((data as { reason?: unknown }).reason)
  );
}

/**
 * The Accept header the Streamable HTTP transport requires (POST: JSON and SSE; GET: SSE), checked
 * here so the refusal is the edge's typed 406 and not the SDK's untyped one.
 */
export function acceptRefusal(
  httpMethod: 'POST' | 'GET',
  accept: string | string[] | undefined,
): HttpRefusal | undefined {
  const value = Array.isArray(accept) ? accept.join(',') : (accept ?? '');
  const ok =
    httpMethod === 'POST'
      ? value.includes('application/json') && value.includes('text/event-stream')
      : value.includes('text/event-stream');
  if (ok) return undefined;
  return inputInvalid(
    406,
    EDGE_JSON_RPC_CODES.BAD_REQUEST,
    httpMethod === 'POST'
      ? 'Not Acceptable: Client must accept both application/json and text/event-stream'
      : 'Not Acceptable: Client must accept text/event-stream',
  );
}
