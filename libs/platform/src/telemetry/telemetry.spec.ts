import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { Metadata } from '@grpc/grpc-js';
import {
  context,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type ContextManager,
} from '@opentelemetry/api';
import { grants } from '@hcp/proto';
import { InProcessBus } from '../bus/in-process-bus';
import { callUnary, createGrpcClient } from '../grpc/grpc-client';
import { startGrpcService } from '../grpc/grpc-service';
import {
  extractBusHeaders,
  extractGrpcMetadata,
  injectBusHeaders,
  injectGrpcMetadata,
  inSpan,
  metrics,
  shutdownTelemetry,
  startTelemetry,
  telemetryEnabled,
  traceIdOf,
} from './telemetry';

// The SDK's context manager is AsyncLocalStorage-based; this stand-in lets the test
// check propagation across async hops without exporting anything.
class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const traced = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: TRACE_ID,
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.SAMPLED,
});

describe('telemetry', () => {
  it('stays off without OTEL_EXPORTER_OTLP_ENDPOINT and still hands out instruments', () => {
    expect(startTelemetry({ serviceName: 'test', env: {} })).toBe(false);
    expect(telemetryEnabled()).toBe(false);
    expect(() => {
      metrics().decisions.add(1, { outcome: 'deny', reason: 'NO_MATCHING_GRANT' });
      metrics().decisionDuration.record(0.2, { outcome: 'deny' });
    }).not.toThrow();
  });

  it('carries W3C trace context in gRPC metadata and bus headers', () => {
    const md = injectGrpcMetadata(new Metadata(), traced);
    expect(md.get('traceparent')).toEqual([`00-${TRACE_ID}-b7ad6b7169203331-01`]);
    expect(traceIdOf(extractGrpcMetadata(md))).toBe(TRACE_ID);

    const headers = injectBusHeaders({ 'x-keep': 'yes' }, traced);
    expect(headers).toMatchObject({ 'x-keep': 'yes', traceparent: expect.any(String) });
    expect(traceIdOf(extractBusHeaders(headers))).toBe(TRACE_ID);
    expect(injectBusHeaders({}, ROOT_CONTEXT)).toEqual({});
    expect(traceIdOf(extractBusHeaders({}))).toBeUndefined();
  });

  describe('with a context manager', () => {
    const manager = new AlsContextManager();
    beforeAll(() => context.setGlobalContextManager(manager));
    afterAll(() => context.disable());

    it('runs bus subscribers in the publisher trace', async () => {
      const bus = new InProcessBus();
      const seen = new Promise<string | undefined>((resolve) => {
        void bus.subscribe('t.trace', () => resolve(traceIdOf()));
      });
      await context.with(traced, () => bus.publish('t.trace', new Uint8Array()));
      await expect(seen).resolves.toBe(TRACE_ID);
      await bus.close();
    });

    it('runs gRPC handlers in the caller trace', async () => {
      let seen: string | undefined;
      @Controller()
      class TraceController {
        @GrpcMethod('GrantStore', 'GetGrant')
        getGrant(): unknown {
          seen = traceIdOf();
          return grants.GetGrantResponse.fromPartial({ grant: { id: 'g' } });
        }
      }
      @Module({ controllers: [TraceController] })
      class TraceModule {}
      const svc = await startGrpcService({
        name: 'trace-test',
        module: TraceModule,
        services: { 'hcp.grants.v1.GrantStore': grants.GrantStoreService },
        port: 0,
      });
      const client = createGrpcClient(grants.GrantStoreClient, svc.url);
      try {
        await context.with(traced, () => callUnary(client.getGrant.bind(client), { grantId: 'g' }));
        expect(seen).toBe(TRACE_ID);
      } finally {
        client.close();
        await svc.close();
      }
    });
  });

  it('exports traces and metrics over OTLP/HTTP when the endpoint is set', async () => {
    const paths: string[] = [];
    const server = http.createServer((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const saved = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://127.0.0.1:${port}`;
    try {
      expect(startTelemetry({ serviceName: 'otlp-test' })).toBe(true);
      expect(telemetryEnabled()).toBe(true);
      await inSpan('unit-of-work', 'internal', () => Promise.resolve());
      metrics().decisions.add(1, { outcome: 'allow', reason: 'ALLOWED' });
      await shutdownTelemetry(); // flushes both pipelines
      expect(telemetryEnabled()).toBe(false);
      expect(paths).toEqual(expect.arrayContaining(['POST /v1/traces', 'POST /v1/metrics']));
    } finally {
      if (saved === undefined) delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      else process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = saved;
      await new Promise((r) => server.close(r));
    }
  });
});
