import net from 'node:net';
import {
  Catch,
  type ArgumentsHost,
  type DynamicModule,
  type INestMicroservice,
  type RpcExceptionFilter,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RpcException, Transport, type GrpcOptions } from '@nestjs/microservices';
import {
  Metadata,
  ServerInterceptingCall,
  status,
  type Server,
  type ServerInterceptor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { HcpError } from '@hcp/core';
import { throwError, type Observable } from 'rxjs';
import { createLogger, NestJsonLogger, type Logger } from '../logging/logger';
import {
  extractGrpcMetadata,
  metrics,
  startSpan,
  withContext,
  type TelemetryContext,
} from '../telemetry/telemetry';
import { GrpcStatusError, grpcErrorFromHcp } from './errors';
import { HealthRegistry } from './health';

/** How a service is started; the one way every HCP gRPC service boots. */
export interface GrpcServiceOptions {
  /** e.g. 'grant-store' (logs, health). */
  readonly name: string;
  /** The Nest root module (controllers with @GrpcMethod). */
  readonly module: Type<unknown> | DynamicModule;
  /**
   * The generated (ts-proto) service definitions served, by full proto name, e.g.
   * `{ 'hcp.grants.v1.GrantStore': grants.GrantStoreService }`. Requests reach the handlers
   * decoded by the same generated codecs the clients use, so servers and clients share one
   * set of message types.
   */
  readonly services: Readonly<Record<string, ServiceDefinition>>;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 = pick a free port; the chosen one is reported. */
  readonly port: number;
  /** Graceful shutdown bound, default 10000. */
  readonly drainTimeoutMs?: number;
}

/** A started service: where it listens and how to stop it gracefully. */
export interface RunningGrpcService {
  readonly port: number;
  /** grpc-js target `host:port`, usable with createGrpcClient. */
  readonly url: string;
  readonly app: INestMicroservice;
  /** Health NOT_SERVING, refuse new calls, drain in-flight ones (bounded), close. */
  close(): Promise<void>;
}

/** The wire shape grpc-js sends for a failed call: status code, message, trailing metadata. */
interface WireError {
  readonly code: status;
  readonly message: string;
  readonly details: string;
  readonly metadata: Metadata;
}

/** Maps whatever a handler threw to what goes on the wire; logs only the unexpected. */
function toWireError(exception: unknown, log: Logger): WireError {
  if (exception instanceof HcpError) {
    const e = grpcErrorFromHcp(exception);
    return { code: e.code, message: e.details, details: e.details, metadata: e.metadata };
  }
  if (exception instanceof GrpcStatusError) {
    return plain(exception.code, exception.message);
  }
  if (exception instanceof RpcException) {
    const inner = exception.getError();
    if (typeof inner === 'object' && inner !== null && 'code' in inner) {
      const { code, message, details, metadata } = inner as Partial<WireError>;
      if (typeof code === 'number' && code !== status.OK && code !== status.INTERNAL) {
        const text = details ?? message ?? '';
        return { code, message: text, details: text, metadata: metadata ?? new Metadata() };
      }
    }
  }
  log.error(
    { err: exception instanceof Error ? exception : new Error(String(exception)) },
    'unexpected error in gRPC handler',
  );
  return plain(status.INTERNAL, 'internal error');
}

function plain(code: status, text: string): WireError {
  return { code, message: text, details: text, metadata: new Metadata() };
}

/**
 * One place where handler errors become gRPC statuses: HcpError travels with its
 * ErrorDetail in trailing metadata; anything unexpected is INTERNAL with a generic
 * message, so internals never reach the caller.
 */
@Catch()
class GrpcExceptionFilter implements RpcExceptionFilter<unknown> {
  constructor(private readonly log: Logger) {}
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    // Nest hands the filter's error object to the grpc-js callback unchanged; grpc-js
    // reads `code`, `details` and `metadata` (sent as trailers) from it.
    const wire = toWireError(exception, this.log);
    return throwError(() => wire);
  }
}

/** Counts calls between arrival and the status being sent; the drain waits on it. */
class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];
  draining = false;

  enter(): void {
    this.count++;
  }
  leave(): void {
    this.count--;
    if (this.count === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }
  get size(): number {
    return this.count;
  }
  /** Resolves true when idle, false when the bound passed first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

const HEALTH_PREFIX = '/grpc.health.v1.Health/';

/**
 * Tracks in-flight calls at the grpc-js level rather than as a Nest interceptor:
 * Nest's observable completes before grpc-js has written the response, so only
 * the status actually being sent marks a call finished. While draining, new
 * calls (except health) are refused with UNAVAILABLE so clients retry elsewhere.
 */
function inFlightInterceptor(inFlight: InFlight): ServerInterceptor {
  return (method, call) => {
    if (method.path.startsWith(HEALTH_PREFIX)) return new ServerInterceptingCall(call);
    if (inFlight.draining) {
      return new ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: () =>
              call.sendStatus({
                code: status.UNAVAILABLE,
                details: 'service is shutting down',
                metadata: new Metadata(),
              }),
          }),
      });
    }
    inFlight.enter();
    const startedAt = performance.now();
    let done = false;
    let telemetry: { span: Span; ctx: TelemetryContext } | undefined;
    const finish = (code: status) => {
      if (done) return;
      done = true;
      inFlight.leave();
      metrics().grpcServerDuration.record(performance.now() - startedAt, {
        method: method.path,
        code: status[code] ?? String(code),
      });
      if (telemetry !== undefined) {
        telemetry.span.setAttribute('rpc.grpc.status_code', code);
        if (code !== status.OK) telemetry.span.setStatus({ code: SpanStatusCode.ERROR });
        telemetry.span.end();
      }
    };
    // Handlers run inside the caller's trace (from the metadata) under a server span.
    const inTrace = (fn: () => void) =>
      telemetry === undefined ? fn() : withContext(telemetry.ctx, fn);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (md, mdNext) => {
            telemetry = startSpan(method.path, 'server', extractGrpcMetadata(md));
            mdNext(md);
          },
          onReceiveMessage: (msg, msgNext) => inTrace(() => msgNext(msg)),
          onReceiveHalfClose: (hcNext) => inTrace(hcNext),
          onCancel: () => finish(status.CANCELLED),
        }),
      sendStatus: (s, next) => {
        next(s);
        finish(s.code);
      },
    });
  };
}

/** Reserves a free loopback port by binding port 0 and releasing it (a small race, accepted for tests and local runs). */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The package definition Nest loads instead of a .proto file: each generated service under its
 * full name, its methods keyed by their proto names (`Decide`), which is what `@GrpcMethod`
 * matches, with ts-proto's key (`decide`) kept as grpc-js's `originalName`. The methods keep
 * ts-proto's own requestDeserialize / responseSerialize.
 */
function packageDefinitionOf(
  services: GrpcServiceOptions['services'],
): Record<string, ServiceDefinition> {
  const definition: Record<string, ServiceDefinition> = {};
  for (const [fullName, service] of Object.entries(services)) {
    const methods: Record<string, ServiceDefinition[string]> = {};
    for (const [key, method] of Object.entries(service)) {
      const slash = method.path.lastIndexOf('/');
      if (method.path.slice(1, slash) !== fullName)
        throw new Error(`method ${method.path} is not part of ${fullName}`);
      methods[method.path.slice(slash + 1)] = { ...method, originalName: key };
    }
    definition[fullName] = methods;
  }
  return definition;
}

/** The proto packages of the services (`hcp.grants.v1` of `hcp.grants.v1.GrantStore`), for Nest's lookup. */
function packagesOf(services: GrpcServiceOptions['services']): string[] {
  return [...new Set(Object.keys(services).map((name) => name.slice(0, name.lastIndexOf('.'))))];
}

/**
 * Boots a NestJS gRPC microservice the HCP way: the generated codecs for requests and
 * responses, the standard health service, one error mapping, JSON logs, and a
 * graceful close that drains in-flight calls.
 */
export async function startGrpcService(options: GrpcServiceOptions): Promise<RunningGrpcService> {
  const log = createLogger('GrpcService', { app: options.name });
  const host = options.host ?? '127.0.0.1';
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const port = options.port === 0 ? await findFreePort(host) : options.port;
  const inFlight = new InFlight();
  let health: HealthRegistry | undefined;
  let grpcServer: Server | undefined;

  const grpcOptions: GrpcOptions = {
    transport: Transport.GRPC,
    options: {
      url: `${host}:${port}`,
      package: packagesOf(options.services),
      packageDefinition: packageDefinitionOf(options.services),
      channelOptions: { interceptors: [inFlightInterceptor(inFlight)] },
      // Nest calls this once the grpc-js server exists and before it registers the
      // handlers: the one hook that reaches the underlying server.
      onLoadPackageDefinition: (_definition: unknown, server: Server) => {
        grpcServer = server;
        health = new HealthRegistry(Object.keys(options.services));
        health.addToServer(server);
      },
    },
  };
  const app = await NestFactory.createMicroservice<GrpcOptions>(options.module, {
    ...grpcOptions,
    logger: new NestJsonLogger(),
  });
  app.useGlobalFilters(new GrpcExceptionFilter(log));
  await app.listen();
  if (health === undefined || grpcServer === undefined)
    throw new Error('gRPC server started without its package definition hook');
  log.info({ port, host }, 'gRPC service listening');

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const started = Date.now();
    health?.set('NOT_SERVING');
    inFlight.draining = true;
    const pending = inFlight.size;
    const drained = await inFlight.idle(drainTimeoutMs);
    if (!drained) log.warn({ pending: inFlight.size }, 'drain bound passed; cancelling calls');
    health?.endWatches();
    const server = grpcServer;
    if (server !== undefined) {
      // tryShutdown lets responses already written reach the client; bounded, then forced.
      const remaining = Math.max(drainTimeoutMs - (Date.now() - started), 200);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, remaining);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await app.close();
    log.info({ drainedCalls: pending, ms: Date.now() - started }, 'gRPC service closed');
  };

  return {
    port,
    url: `${host}:${port}`,
    app,
    close: () => (closing ??= close()),
  };
}
