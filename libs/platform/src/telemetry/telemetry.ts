import {
  context,
  metrics as otelMetrics,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Counter,
  type Histogram,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Metadata } from '@grpc/grpc-js';
import { createLogger } from '../logging/logger';

export type { Context as TelemetryContext } from '@opentelemetry/api';

const log = createLogger('Telemetry');

/**
 * W3C trace context + baggage, used directly rather than through the global
 * propagator so that the wire format does not depend on whether the SDK runs.
 */
const propagator = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

let sdk: NodeSDK | undefined;
let instruments: HcpMetrics | undefined;

/** Options of startTelemetry. */
export interface TelemetryOptions {
  readonly serviceName: string;
  /** Defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Starts OpenTelemetry (traces + metrics over OTLP/HTTP) only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise the API stays no-op and costs
 * nothing. Returns whether it started. Call once, first thing at boot.
 */
export function startTelemetry(options: TelemetryOptions): boolean {
  const env = options.env ?? process.env;
  const endpoint = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (endpoint === undefined || endpoint === '' || sdk !== undefined) return sdk !== undefined;
  sdk = new NodeSDK({
    serviceName: options.serviceName,
    traceExporter: new OTLPTraceExporter(),
    metricReaders: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() })],
    logRecordProcessors: [],
    instrumentations: [],
    textMapPropagator: propagator,
  });
  sdk.start();
  instruments = undefined; // recreate against the real meter provider
  log.info({ endpoint, serviceName: options.serviceName }, 'telemetry exporting over OTLP');
  return true;
}

/** Flushes and stops the SDK, if it was started (graceful shutdown). */
export async function shutdownTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  instruments = undefined;
  if (s !== undefined) await s.shutdown();
}

const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};
const recordGetter: TextMapGetter<Readonly<Record<string, string>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};
const metadataSetter: TextMapSetter<Metadata> = {
  set: (md, key, value) => md.set(key, value),
};
const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  },
};

/** Writes the active (or given) trace context into outgoing gRPC metadata. */
export function injectGrpcMetadata(md: Metadata, ctx: Context = context.active()): Metadata {
  propagator.inject(ctx, md, metadataSetter);
  return md;
}

/** Reads the caller's trace context from incoming gRPC metadata. */
export function extractGrpcMetadata(md: Metadata): Context {
  return propagator.extract(ROOT_CONTEXT, md, metadataGetter);
}

/** Returns the headers plus the active (or given) trace context, for a bus message. */
export function injectBusHeaders(
  headers: Readonly<Record<string, string>> = {},
  ctx: Context = context.active(),
): Record<string, string> {
  const out = { ...headers };
  propagator.inject(ctx, out, recordSetter);
  return out;
}

/** Reads the publisher's trace context from bus message headers. */
export function extractBusHeaders(headers: Readonly<Record<string, string>>): Context {
  return propagator.extract(ROOT_CONTEXT, headers, recordGetter);
}

/** The trace id carried by a context, if any (for logs and tests). */
export function traceIdOf(ctx: Context = context.active()): string | undefined {
  return trace.getSpanContext(ctx)?.traceId;
}

/** Runs fn with ctx active (a no-op pass-through while the SDK is off). */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

/**
 * Starts a span as a child of `parent` (default: active context) and gives fn
 * the context holding it. Ends the span when fn settles; marks errors.
 */
export async function inSpan<T>(
  name: string,
  kind: 'server' | 'client' | 'consumer' | 'producer' | 'internal',
  fn: (span: Span, ctx: Context) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  const span = trace.getTracer('hcp').startSpan(name, { kind: SPAN_KINDS[kind] }, parent);
  const ctx = trace.setSpan(parent, span);
  try {
    return await context.with(ctx, () => fn(span, ctx));
  } catch (err: unknown) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : '' });
    throw err;
  } finally {
    span.end();
  }
}

/** Starts a span without running anything in it (for callbacks that end it later). */
export function startSpan(
  name: string,
  kind: 'server' | 'client' | 'consumer' | 'producer' | 'internal',
  parent: Context = context.active(),
): { span: Span; ctx: Context } {
  const span = trace.getTracer('hcp').startSpan(name, { kind: SPAN_KINDS[kind] }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

const SPAN_KINDS = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  consumer: SpanKind.CONSUMER,
  producer: SpanKind.PRODUCER,
  internal: SpanKind.INTERNAL,
} as const;

/** The instruments HCP services record; names are the dashboard contract. */
export interface HcpMetrics {
  /** `hcp_decisions_total{outcome,reason}`: every decision, allow or deny. */
  readonly decisions: Counter<{ outcome: 'allow' | 'deny'; reason: string }>;
  /** `hcp_decision_duration_ms{outcome}`: time to decide, in the PDP. */
  readonly decisionDuration: Histogram<{ outcome: 'allow' | 'deny' }>;
  /** `hcp_grpc_server_duration_ms{method,code}`: every served gRPC call. */
  readonly grpcServerDuration: Histogram<{ method: string; code: string }>;
  /** `hcp_bus_messages_total{direction,subject}`: messages published and received. */
  readonly busMessages: Counter<{ direction: 'out' | 'in'; subject: string }>;
  /** `hcp_cache_events_total{cache,event}`: cache hits, misses, invalidations. */
  readonly cacheEvents: Counter<{ cache: string; event: string }>;
}

/**
 * The shared instruments, created on first use against the current meter
 * provider (no-op until startTelemetry ran). Call after startTelemetry.
 */
export function metrics(): HcpMetrics {
  if (instruments !== undefined) return instruments;
  const meter = otelMetrics.getMeter('hcp');
  instruments = {
    decisions: meter.createCounter('hcp_decisions_total', {
      description: 'Decisions by outcome and reason code',
    }),
    decisionDuration: meter.createHistogram('hcp_decision_duration_ms', {
      description: 'Decision latency',
      unit: 'ms',
    }),
    grpcServerDuration: meter.createHistogram('hcp_grpc_server_duration_ms', {
      description: 'Served gRPC call latency',
      unit: 'ms',
    }),
    busMessages: meter.createCounter('hcp_bus_messages_total', {
      description: 'Event bus messages by direction',
    }),
    cacheEvents: meter.createCounter('hcp_cache_events_total', {
      description: 'Cache hits, misses and invalidations',
    }),
  };
  return instruments;
}

/** True once startTelemetry started the SDK. */
export function telemetryEnabled(): boolean {
  return sdk !== undefined;
}
