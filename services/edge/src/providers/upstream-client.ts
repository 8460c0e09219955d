import type { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  McpError,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { createLogger, type Logger } from '@hcp/platform';
import type { HttpTransportConfig, ProviderConfig, StdioTransportConfig } from './provider-config';

/**
 * Why an upstream operation failed. A closed union so the call path can map
 * each case to a JSON-RPC error and an audit entry exhaustively; no case is a
 * reason code of its own because an upstream failure is not a policy decision.
 */
export type UpstreamErrorKind =
  /** The child could not be spawned, the URL not reached, or `initialize` failed. */
  | 'start_failed'
  /** No answer within the bound; the SDK sent `notifications/cancelled`. */
  | 'timeout'
  /** The upstream answered with a JSON-RPC error (see `rpcCode`). */
  | 'rpc_error'
  /** The result (or HTTP response body) exceeded `maxResultBytes`. */
  | 'result_too_large'
  /** The upstream broke the protocol's shape (cursor loop, too many tools or pages). */
  | 'invalid_response'
  /** The connection is closed (child exited, transport error, or `close()` was called). */
  | 'unavailable'
  /** The caller's AbortSignal fired. */
  | 'aborted';

/** The operation that failed, so logs and audit say where. */
export type UpstreamOperation = 'connect' | 'tools/list' | 'tools/call';

const MAX_UPSTREAM_MESSAGE_CHARS = 512;

/**
 * Typed failure of an upstream MCP server. The upstream's own error text is
 * kept apart in `upstreamMessage` (truncated) and kept out of `message`: it is
 * provider output, so it must not reach an agent as if the edge said it (I1).
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly kind: UpstreamErrorKind,
    readonly providerId: string,
    readonly operation: UpstreamOperation,
    message: string,
    readonly extra: {
      readonly rpcCode?: number;
      readonly upstreamMessage?: string;
      /** Last bytes of a stdio child's stderr, for operators diagnosing a start failure. */
      readonly stderrTail?: string;
      readonly cause?: unknown;
    } = {},
  ) {
    super(`provider ${providerId}: ${operation}: ${message}`, { cause: extra.cause });
  }
}

/** Bounds on one upstream connection; every wait has a deadline so nothing can hang. */
export interface UpstreamClientOptions {
  /** Spawn/connect plus the `initialize` handshake. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Whole `tools/list` walk over all pages. Default 10 000 ms. */
  readonly listTimeoutMs?: number;
  /** One `tools/call`, unless the call overrides it. Default 30 000 ms. */
  readonly callTimeoutMs?: number;
  /** Largest accepted call result, measured as its JSON text in bytes. Default 4 MiB. */
  readonly maxResultBytes?: number;
  /**
   * Largest single message the transport buffers. For stdio the SDK drops the
   * whole connection beyond it (its ReadBuffer throws and closes), so it sits
   * well above maxResultBytes. Default 16 MiB.
   */
  readonly maxMessageBytes?: number;
  /** Upper bound on `tools/list` pages followed. Default 50. */
  readonly maxListPages?: number;
  /** Upper bound on tools accepted from one provider. Default 1000. */
  readonly maxTools?: number;
}

const DEFAULTS: Required<UpstreamClientOptions> = {
  connectTimeoutMs: 10_000,
  listTimeoutMs: 10_000,
  callTimeoutMs: 30_000,
  maxResultBytes: 4 * 1024 * 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  maxListPages: 50,
  maxTools: 1000,
};

/**
 * Why the upstream's tool definitions may have changed: it announced it
 * (`notifications/tools/list_changed`), or a call failed the way a call to a
 * changed tool does (JSON-RPC -32602 invalid params, which the SDK client also
 * raises when a result no longer fits the listed output schema, or -32601).
 */
export type ToolsChangedSign = 'list_changed' | 'call_error';

/** What the connection reports besides answers; every listener is called synchronously. */
export interface UpstreamEvents {
  /** The listing may be out of date: the caller marks it stale before anything else runs. */
  readonly onToolsChanged?: (providerId: string, sign: ToolsChangedSign) => void;
}

/** JSON-RPC codes of a failed call that suggest the tool is no longer what was listed. */
const CHANGED_TOOL_RPC_CODES: ReadonlySet<number> = new Set([
  ErrorCode.InvalidParams,
  ErrorCode.MethodNotFound,
]);

/** How long `close()` waits for a stdio child to be gone after the SDK's own stop sequence. */
const CHILD_EXIT_WAIT_MS = 3000;
const STDERR_TAIL_CHARS = 4096;

/** What a tool call returned, with its measured size so the vault can enforce its own limits. */
export interface UpstreamCallResult {
  readonly content: CallToolResult['content'];
  readonly structuredContent?: Record<string, unknown>;
  /** A tool-level error (`isError: true`) is a result, not an UpstreamError: it is the tool's output. */
  readonly isError: boolean;
  readonly sizeBytes: number;
}

/** Per-call overrides. */
export interface CallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * One MCP client connection to one upstream provider, over stdio or
 * Streamable HTTP, with every operation bounded in time and size and every
 * failure turned into an UpstreamError. It only moves messages: it decides
 * nothing and reads no tool metadata as policy (I1).
 */
export class UpstreamClient {
  /** close() was called. */
  private closing = false;
  /** The connection is gone, by close() or because the child/transport ended. */
  private ended = false;
  private stderrTail = '';
  private readonly log: Logger;

  private constructor(
    readonly providerId: string,
    private readonly client: Client,
    private readonly transport: Transport,
    private readonly options: Required<UpstreamClientOptions>,
    private readonly events: UpstreamEvents,
  ) {
    this.log = createLogger('UpstreamClient', { providerId });
  }

  /** Starts the transport and completes `initialize` within `connectTimeoutMs`, or throws `start_failed`/`timeout`. */
  static async connect(
    config: ProviderConfig,
    options: UpstreamClientOptions = {},
    events: UpstreamEvents = {},
  ): Promise<UpstreamClient> {
    const opts: Required<UpstreamClientOptions> = { ...DEFAULTS, ...options };
    const transport =
      config.transport.kind === 'stdio'
        ? stdioTransport(config.transport, opts)
        : httpTransport(config.transport, opts);
    const client = new Client({ name: 'hcp-edge', version: '0.1.0' }, { capabilities: {} });
    const upstream = new UpstreamClient(config.id, client, transport, opts, events);
    upstream.watchTransport();
    // Registered before connect: an announcement can follow `initialize` at once.
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      upstream.toolsChanged('list_changed');
    });
    try {
      await withDeadline(
        client.connect(transport, { timeout: opts.connectTimeoutMs }),
        opts.connectTimeoutMs,
        () => new McpError(ErrorCode.RequestTimeout, 'connect timed out'),
      );
    } catch (err) {
      // A child that never finished initialize holds no state worth a graceful stop: kill it now
      // rather than wait out the SDK's stdin-end/SIGTERM grace periods (2 s each).
      upstream.kill();
      // Close before building the error: stderr written while dying lands in it.
      await upstream.close();
      throw upstream.toUpstreamError('connect', err);
    }
    const info = client.getServerVersion();
    upstream.log.info({ server: info?.name, version: info?.version }, 'upstream connected');
    return upstream;
  }

  /** The stdio child's pid while it runs (null for HTTP or once it exited); tests use it to prove close() reaps it. */
  get pid(): number | null {
    return this.transport instanceof ReapableStdioTransport && !this.transport.exited
      ? this.transport.childPid
      : null;
  }

  /** The upstream's self-description from `initialize`; informational only, never policy (I1). */
  get serverInfo(): { readonly name: string; readonly version: string } | undefined {
    return this.client.getServerVersion();
  }

  /**
   * True when the upstream declared `tools.listChanged` in `initialize`: it promises to announce
   * changes of its tools. Informational (how promptly drift is seen), never policy (I1).
   */
  get announcesToolChanges(): boolean {
    return this.client.getServerCapabilities()?.tools?.listChanged === true;
  }

  /** Every tool the upstream lists, following `nextCursor` within page, count and time bounds. */
  async listTools(): Promise<Tool[]> {
    this.assertOpen('tools/list');
    const deadline = Date.now() + this.options.listTimeoutMs;
    const tools: Tool[] = [];
    const seenCursors = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < this.options.maxListPages; page++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new UpstreamError('timeout', this.providerId, 'tools/list', 'listing timed out');
      }
      let result;
      try {
        result = await withDeadline(
          this.client.listTools(cursor === undefined ? {} : { cursor }, { timeout: remaining }),
          remaining,
          () => new McpError(ErrorCode.RequestTimeout, 'listing timed out'),
        );
      } catch (err) {
        throw this.toUpstreamError('tools/list', err);
      }
      tools.push(...result.tools);
      if (tools.length > this.options.maxTools) {
        throw this.invalid('tools/list', `more than ${this.options.maxTools} tools`);
      }
      const next = result.nextCursor;
      if (next === undefined || next === '') return tools;
      if (seenCursors.has(next)) throw this.invalid('tools/list', 'cursor repeats');
      seenCursors.add(next);
      cursor = next;
    }
    throw this.invalid('tools/list', `more than ${this.options.maxListPages} pages`);
  }

  /**
   * Calls one tool with already-validated arguments. Bounded by
   * `timeoutMs` and `maxResultBytes`; a JSON-RPC error, a timeout, a closed
   * connection or an oversized result is an UpstreamError, never a hang.
   */
  async callTool(
    name: string,
    args: Readonly<Record<string, unknown>>,
    options: CallOptions = {},
  ): Promise<UpstreamCallResult> {
    this.assertOpen('tools/call');
    const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs;
    let raw: unknown;
    try {
      raw = await withDeadline(
        this.client.callTool({ name, arguments: { ...args } }, undefined, {
          timeout: timeoutMs,
          maxTotalTimeout: timeoutMs,
          ...(options.signal ? { signal: options.signal } : {}),
        }),
        timeoutMs,
        () => new McpError(ErrorCode.RequestTimeout, 'call timed out'),
      );
    } catch (err) {
      // The SDK reports a caller abort as McpError RequestTimeout (it wraps any cancel reason),
      // so the signal, not the error code, tells an abort from a timeout.
      if (options.signal?.aborted) {
        throw new UpstreamError('aborted', this.providerId, 'tools/call', 'aborted by caller', {
          cause: err,
        });
      }
      const failure = this.toUpstreamError('tools/call', err);
      if (
        failure.kind === 'rpc_error' &&
        failure.extra.rpcCode !== undefined &&
        CHANGED_TOOL_RPC_CODES.has(failure.extra.rpcCode)
      )
        this.toolsChanged('call_error');
      throw failure;
    }
    const sizeBytes = Buffer.byteLength(JSON.stringify(raw), 'utf8');
    if (sizeBytes > this.options.maxResultBytes) {
      throw new UpstreamError(
        'result_too_large',
        this.providerId,
        'tools/call',
        `result of ${sizeBytes} bytes exceeds ${this.options.maxResultBytes}`,
      );
    }
    // The default result schema yields CallToolResult; the legacy `toolResult` shape only parses
    // under CompatibilityCallToolResultSchema, which is not used here.
    const result = raw as CallToolResult;
    return {
      content: result.content,
      ...(result.structuredContent !== undefined
        ? { structuredContent: result.structuredContent }
        : {}),
      isError: result.isError === true,
      sizeBytes,
    };
  }

  /**
   * Ends the connection. For stdio the SDK ends stdin, then SIGTERM, then
   * SIGKILL (2 s apart); this also waits until the pid is really gone, so a
   * caller that awaited close() leaves no child behind. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.ended = true;
    try {
      await this.client.close();
    } catch (err) {
      this.log.warn({ err }, 'upstream close failed');
    }
    if (this.transport instanceof ReapableStdioTransport) {
      // The SDK sends SIGKILL last but does not wait for it to land.
      if (!(await this.transport.waitForExit(CHILD_EXIT_WAIT_MS))) {
        this.kill();
        await this.transport.waitForExit(CHILD_EXIT_WAIT_MS);
      }
    }
  }

  /** Tells the listener the listing may be out of date; a throwing listener cannot break the connection. */
  private toolsChanged(sign: ToolsChangedSign): void {
    if (this.ended) return;
    this.log.info({ sign }, 'upstream tool definitions may have changed');
    try {
      this.events.onToolsChanged?.(this.providerId, sign);
    } catch (err) {
      this.log.error({ err }, 'tools-changed listener failed');
    }
  }

  /** SIGKILLs the stdio child if it still runs; the exit flag (not the pid) guards against pid reuse. */
  private kill(): void {
    const pid = this.pid;
    if (pid === null) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited between the check and the kill.
    }
  }

  private watchTransport(): void {
    this.client.onerror = (err) => this.log.debug({ err }, 'upstream transport error');
    this.client.onclose = () => {
      if (!this.ended) this.log.warn('upstream connection closed');
      this.ended = true;
    };
    if (this.transport instanceof ReapableStdioTransport) {
      // Piped stderr must be drained or a chatty child blocks on a full pipe.
      const stderr = this.transport.stderr as Readable | null;
      stderr?.on('data', (chunk: Buffer | string) => {
        this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL_CHARS);
      });
    }
  }

  private assertOpen(operation: UpstreamOperation): void {
    if (this.ended) {
      throw new UpstreamError('unavailable', this.providerId, operation, 'connection is closed');
    }
  }

  private invalid(operation: UpstreamOperation, message: string): UpstreamError {
    return new UpstreamError('invalid_response', this.providerId, operation, message);
  }

  private toUpstreamError(operation: UpstreamOperation, err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const stderrTail = this.stderrTail === '' ? {} : { stderrTail: this.stderrTail };
    const upstreamMessage =
      err instanceof Error
        ? { upstreamMessage: err.message.slice(0, MAX_UPSTREAM_MESSAGE_CHARS) }
        : {};
    const make = (kind: UpstreamErrorKind, message: string, rpcCode?: number): UpstreamError =>
      new UpstreamError(kind, this.providerId, operation, message, {
        ...(rpcCode === undefined ? {} : { rpcCode }),
        ...upstreamMessage,
        ...stderrTail,
        cause: err,
      });
    if (err instanceof ResponseTooLargeError) return make('result_too_large', err.message);
    if (err instanceof McpError) {
      if (err.code === Number(ErrorCode.RequestTimeout)) return make('timeout', 'timed out');
      if (operation === 'connect') return make('start_failed', 'initialize failed', err.code);
      if (err.code === Number(ErrorCode.ConnectionClosed)) {
        return make('unavailable', 'connection closed');
      }
      return make('rpc_error', `upstream returned JSON-RPC error ${err.code}`, err.code);
    }
    if (err instanceof Error && err.name === 'AbortError') return make('aborted', 'aborted');
    if (operation === 'connect') return make('start_failed', 'could not start or reach the server');
    return make('unavailable', 'transport failed');
  }
}

/**
 * The SDK's stdio transport, plus the child's pid and real exit. The SDK
 * forgets the pid as soon as close() starts (its Client.connect also calls
 * close() on a failed handshake), so the pid is kept from start(), and the
 * exit is observed through onclose, which the SDK fires on the child's
 * 'close' event and Protocol.connect chains rather than replaces.
 */
class ReapableStdioTransport extends StdioClientTransport {
  childPid: number | null = null;
  exited = false;
  private readonly exitWaiters = new Set<() => void>();

  constructor(params: ConstructorParameters<typeof StdioClientTransport>[0]) {
    super(params);
    this.onclose = () => {
      this.exited = true;
      for (const wake of this.exitWaiters) wake();
      this.exitWaiters.clear();
    };
  }

  override async start(): Promise<void> {
    await super.start();
    this.childPid = this.pid;
  }

  /** Resolves true once the child has exited (or never started), false after `ms`. */
  waitForExit(ms: number): Promise<boolean> {
    if (this.exited || this.childPid === null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.exitWaiters.delete(wake);
        resolve(false);
      }, ms);
      this.exitWaiters.add(wake);
    });
  }
}

function stdioTransport(
  config: StdioTransportConfig,
  opts: Required<UpstreamClientOptions>,
): ReapableStdioTransport {
  return new ReapableStdioTransport({
    command: config.command,
    args: [...config.args],
    ...(config.env ? { env: { ...config.env } } : {}),
    ...(config.cwd ? { cwd: config.cwd } : {}),
    stderr: 'pipe',
    maxBufferSize: opts.maxMessageBytes,
  });
}

function httpTransport(
  config: HttpTransportConfig,
  opts: Required<UpstreamClientOptions>,
): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(config.url), {
    ...(config.headers ? { requestInit: { headers: { ...config.headers } } } : {}),
    // A provider may not bounce the edge to another origin (SSRF through the provider URL).
    redirectPolicy: 'same-origin',
    fetch: boundedFetch(opts.maxResultBytes),
  });
}

/** Raised inside a response body stream that grew past its bound. */
class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';
}

/**
 * fetch that cuts a POST response body off past `maxBytes`, so an upstream
 * cannot make the edge buffer an unbounded reply. GET is the long-lived
 * server-to-client SSE stream and is left alone (notifications only; results
 * of calls arrive on the POST that asked for them).
 */
function boundedFetch(maxBytes: number): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (init?.method !== 'POST' || response.status !== 200 || response.body === null) {
      return response;
    }
    let seen = 0;
    const limited = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > maxBytes) {
            controller.error(new ResponseTooLargeError(`response body exceeds ${maxBytes} bytes`));
          } else {
            controller.enqueue(chunk);
          }
        },
      }),
    );
    return new Response(limited, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** Races a promise against a timer; the SDK has its own timeouts, this is the backstop against a hang. */
async function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    // A little slack so the SDK's own timeout (which also cancels upstream) normally wins.
    timer = setTimeout(() => reject(onTimeout()), ms + 250);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
