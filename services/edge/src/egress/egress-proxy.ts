import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { pipeline } from 'node:stream';
import type { ReasonCode, ResourceFacts } from '@hcp/core';
import type { UrlCanonicalizer } from '@hcp/canonical';
import { createLogger, type Logger } from '@hcp/platform';

/**
 * Rules the proxy itself reports, beside the canonicaliser's `url.*` rules:
 * a request the proxy cannot carry even though its URL might be fine.
 */
export const EGRESS_RULES = [
  /** An absolute-form request for anything but `http://` (https must come as CONNECT). */
  'egress.scheme',
  /** A CONNECT target that is not `host:port`. */
  'egress.bad_connect_target',
  /** An origin-form request (`GET /path`): the client used the proxy as if it were a server. */
  'egress.not_proxy_request',
] as const;

/** A proxy-level rule name. */
export type EgressRule = (typeof EGRESS_RULES)[number];

/**
 * One request the proxy refused, for the edge to audit. Every redirect hop of
 * an upstream fetch is its own request, so a refused hop shows up here even
 * though the agent only asked for the first URL.
 */
export interface EgressRefusal {
  readonly providerId: string;
  /** `GET`, `HEAD`, ... or `CONNECT`. */
  readonly method: string;
  /** The target as the upstream sent it: an absolute URL, or `host:port` for CONNECT (truncated). */
  readonly rawUrl: string;
  /** The canonical URL when the canonicaliser got that far. */
  readonly canonical?: string;
  /** A `url.*` rule of @hcp/canonical or an EgressRule. */
  readonly rule: string;
  readonly status: 'denied' | 'unresolvable' | 'invalid';
  /** The reason code the audit entry carries, from the canonicaliser's status. */
  readonly reason: ReasonCode;
  /** Human-readable cause; may name resolved addresses, so it is for operators, not agents. */
  readonly detail: string;
}

/** Opens a TCP connection to a vetted address; the seam tests use to map a public IP to loopback. */
export type EgressDialer = (ip: string, port: number) => Socket;

/** How one provider's egress proxy behaves; every wait and size is bounded. */
export interface EgressProxyOptions {
  /** Carried into every refusal and log line. */
  readonly providerId: string;
  /**
   * The provider's URL view (resolver, allowCidrs). The proxy connects only to
   * the addresses it returns, so the name is resolved exactly once per request.
   */
  readonly canonicalizer: UrlCanonicalizer;
  /** Called for each refused request, before the 403 is written; must not throw. */
  readonly onRefusal?: (event: EgressRefusal) => void;
  /** Default `net.connect({ host: ip, port })`. Tests only. */
  readonly dial?: EgressDialer;
  /** Listen address; default 127.0.0.1 (the proxy must never face a network). */
  readonly host?: string;
  /** Default 0: pick a free port. */
  readonly port?: number;
  /** Largest request head the proxy parses; default 16 KiB (beyond it Node answers 431). */
  readonly maxHeaderBytes?: number;
  /** Per address tried; default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** A connection (either side) with no traffic for this long is destroyed; default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Client connections open at once; beyond it new ones are dropped. Default 64. */
  readonly maxConnections?: number;
  /** How long close() lets in-flight requests and tunnels finish; default 5000 ms. */
  readonly drainTimeoutMs?: number;
}

/** A listening egress proxy; pass `url` to the provider (mcp-server-fetch: `--proxy-url`). */
export interface RunningEgressProxy {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops accepting, lets in-flight work finish within drainTimeoutMs, then destroys what is left. */
  close(): Promise<void>;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxHeaderBytes: 16 * 1024,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 30_000,
  maxConnections: 64,
  drainTimeoutMs: 5000,
} as const;

/** Bound on the raw target kept in a refusal event. */
const MAX_RAW_IN_EVENT = 2048;

/** RFC 9110 section 7.6.1 hop-by-hop fields, plus the proxy's own. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// host:port with a bracketed IPv6 literal or a name/IPv4 made of URL host characters.
const CONNECT_TARGET = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+):([0-9]{1,5})$/;

function reasonOf(status: EgressRefusal['status']): ReasonCode {
  switch (status) {
    case 'denied':
      return 'RESOURCE_DENIED';
    case 'unresolvable':
      return 'RESOURCE_UNRESOLVABLE';
    case 'invalid':
      return 'INPUT_INVALID';
  }
}

/** Drops hop-by-hop fields, including any the `Connection` header names. */
function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** A failure to reach any vetted address: not a policy refusal, so it is a 502/504, not a 403. */
class DialError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/**
 * Starts a forward proxy that re-checks every request a URL provider makes.
 *
 * Why it exists: an upstream like mcp-server-fetch follows redirects by
 * itself, so the edge's check of the agent's URL says nothing about hop two.
 * The provider is pointed at this proxy, and each request it sends through it
 * (absolute-form `http://` or `CONNECT host:port` for https) — every redirect
 * hop being a new request — is canonicalised again with the provider's URL
 * rules. The proxy connects to exactly the addresses the canonicaliser vetted
 * (no second DNS lookup, so a name cannot be rebound to an internal address
 * between check and connect). Refusals get a 403 and an `onRefusal` event.
 */
export async function startEgressProxy(options: EgressProxyOptions): Promise<RunningEgressProxy> {
  const opts = { ...DEFAULTS, ...options };
  const log: Logger = createLogger('EgressProxy', { providerId: opts.providerId });
  const dial: EgressDialer = opts.dial ?? ((ip, port) => netConnect({ host: ip, port }));
  const sockets = new Set<Socket>();
  let closing = false;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const refuse = (
    method: string,
    rawUrl: string,
    status: EgressRefusal['status'],
    rule: string,
    detail: string,
    canonical?: string,
  ): EgressRefusal => {
    const event: EgressRefusal = {
      providerId: opts.providerId,
      method,
      rawUrl: rawUrl.length > MAX_RAW_IN_EVENT ? rawUrl.slice(0, MAX_RAW_IN_EVENT) : rawUrl,
      ...(canonical === undefined ? {} : { canonical }),
      rule,
      status,
      reason: reasonOf(status),
      detail,
    };
    log.info({ method, rule, reason: event.reason }, 'egress request refused');
    try {
      opts.onRefusal?.(event);
    } catch (error: unknown) {
      log.error({ err: error }, 'onRefusal threw');
    }
    return event;
  };

  const refusalOfFacts = (method: string, rawUrl: string, facts: ResourceFacts): EgressRefusal => {
    if (facts.status === 'resolved') throw new Error('resolved facts are not a refusal');
    return refuse(method, rawUrl, facts.status, facts.rule, facts.detail, facts.canonical);
  };

  /** Tries each vetted address in order, each within connectTimeoutMs. */
  const connectTo = async (addresses: readonly string[], port: number): Promise<Socket> => {
    let last: DialError = new DialError('no address to connect to', false);
    for (const ip of addresses) {
      if (closing) throw new DialError('proxy is closing', false);
      try {
        return await connectOne(ip, port);
      } catch (error: unknown) {
        last = error instanceof DialError ? error : new DialError(String(error), false);
      }
    }
    throw last;
  };

  const connectOne = (ip: string, port: number): Promise<Socket> =>
    new Promise<Socket>((resolve, reject) => {
      const socket = dial(ip, port);
      track(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new DialError(`connect to ${ip}:${port} timed out`, true));
      }, opts.connectTimeoutMs);
      const onError = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(new DialError(`connect to ${ip}:${port} failed: ${error.message}`, false));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setTimeout(opts.idleTimeoutMs, () => socket.destroy());
        resolve(socket);
      });
    });

  const plainReply = (res: ServerResponse, status: number, body: string): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const raw = req.url ?? '';
    if (closing) {
      plainReply(res, 503, 'hcp egress: shutting down\n');
      return;
    }
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw)) {
      const e = refuse(
        method,
        raw,
        'invalid',
        'egress.not_proxy_request',
        'not an absolute-form request',
      );
      plainReply(res, 403, `hcp egress: refused (${e.rule})\n`);
      return;
    }
    const facts = await opts.canonicalizer.canonicalize(raw);
    if (facts.status !== 'resolved') {
      const e = refusalOfFacts(method, raw, facts);
      plainReply(res, 403, `hcp egress: refused (${e.rule})\n`);
      return;
    }
    const target = new URL(facts.resource.canonical);
    if (target.protocol !== 'http:') {
      const e = refuse(
        method,
        raw,
        'denied',
        'egress.scheme',
        `${target.protocol} must be tunnelled with CONNECT`,
        facts.resource.canonical,
      );
      plainReply(res, 403, `hcp egress: refused (${e.rule})\n`);
      return;
    }
    const port = target.port === '' ? 80 : Number(target.port);

    let upstreamSocket: Socket;
    try {
      upstreamSocket = await connectTo(facts.resource.addresses ?? [], port);
    } catch (error: unknown) {
      const timedOut = error instanceof DialError && error.timedOut;
      log.warn({ err: error, port }, 'egress connect failed');
      plainReply(res, timedOut ? 504 : 502, 'hcp egress: upstream unreachable\n');
      return;
    }

    if (res.destroyed) {
      // The client left while the proxy was checking and connecting.
      upstreamSocket.destroy();
      return;
    }
    const headers = endToEndHeaders(req.headers);
    headers.host = target.host;
    headers.connection = 'close';
    const upstreamReq = httpRequest({
      method,
      path: `${target.pathname}${target.search}`,
      headers,
      // The already-connected socket to the vetted address: no lookup happens here.
      createConnection: () => upstreamSocket,
    });
    upstreamReq.on('response', (upstreamRes) => {
      res.writeHead(
        upstreamRes.statusCode ?? 502,
        upstreamRes.statusMessage,
        endToEndHeaders(upstreamRes.headers),
      );
      pipeline(upstreamRes, res, () => upstreamSocket.destroy());
    });
    upstreamReq.on('error', (error) => {
      log.warn({ err: error }, 'egress upstream request failed');
      plainReply(res, 502, 'hcp egress: upstream failed\n');
      upstreamSocket.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstreamSocket.destroy();
    });
    pipeline(req, upstreamReq, () => undefined);
  };

  const onConnect = async (req: IncomingMessage, client: Socket, head: Buffer): Promise<void> => {
    const raw = req.url ?? '';
    const reply403 = (rule: string): void => {
      const body = `hcp egress: refused (${rule})\n`;
      client.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    client.on('error', () => client.destroy());
    client.setTimeout(opts.idleTimeoutMs, () => client.destroy());
    if (closing) {
      client.end(
        'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n',
      );
      return;
    }
    const match = CONNECT_TARGET.exec(raw);
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || !(port >= 1 && port <= 65535)) {
      const e = refuse('CONNECT', raw, 'invalid', 'egress.bad_connect_target', 'not host:port');
      reply403(e.rule);
      return;
    }
    const facts = await opts.canonicalizer.canonicalize(`https://${raw}/`);
    if (facts.status !== 'resolved') {
      reply403(refusalOfFacts('CONNECT', raw, facts).rule);
      return;
    }
    let upstream: Socket;
    try {
      upstream = await connectTo(facts.resource.addresses ?? [], port);
    } catch (error: unknown) {
      const timedOut = error instanceof DialError && error.timedOut;
      log.warn({ err: error, port }, 'egress CONNECT failed');
      client.end(
        timedOut
          ? 'HTTP/1.1 504 Gateway Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'
          : 'HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n',
      );
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    const done = (): void => {
      upstream.destroy();
      client.destroy();
    };
    pipeline(client, upstream, done);
    pipeline(upstream, client, done);
  };

  const server = createServer({
    maxHeaderSize: opts.maxHeaderBytes,
    headersTimeout: Math.min(opts.idleTimeoutMs, 10_000),
    requestTimeout: 0,
    keepAliveTimeout: 5000,
  });
  server.maxConnections = opts.maxConnections;
  // A backstop only: the upstream side's idle timer fires first and answers 502.
  server.timeout = 2 * opts.idleTimeoutMs;
  server.on('connection', track);
  server.on('request', (req, res) => {
    onRequest(req, res).catch((error: unknown) => {
      log.error({ err: error }, 'egress request handler failed');
      plainReply(res, 502, 'hcp egress: internal error\n');
    });
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    onConnect(req, client, head).catch((error: unknown) => {
      log.error({ err: error }, 'egress CONNECT handler failed');
      client.destroy();
    });
  });
  // A client speaking WebSocket or h2c through the proxy is not supported: drop it.
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => socket.destroy());
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        stopped.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), opts.drainTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      if (!drained) {
        server.closeAllConnections();
        await stopped;
      }
    })();
    return closed;
  };

  return { port, url, close };
}
