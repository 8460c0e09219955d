import { trace } from '@opentelemetry/api';
import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

const root: Logger = pino({
  level: process.env['HCP_LOG_LEVEL'] ?? (process.env['NODE_ENV'] === 'test' ? 'silent' : 'info'),
  base: { service: process.env['HCP_SERVICE_NAME'] ?? 'hcp' },
  timestamp: pino.stdTimeFunctions.isoTime,
  // Every line carries the active trace id, so logs and traces join without extra work.
  mixin() {
    const ctx = trace.getActiveSpan()?.spanContext();
    return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
  },
  redact: {
    paths: ['*.password', '*.token', '*.secret', '*.authorization', 'payload'],
    censor: '[redacted]',
  },
});

/** One structured JSON logger per class, named after it. */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ logger: name, ...bindings });
}

/** Adapts the JSON logger to NestJS so framework lines are structured too. */
export class NestJsonLogger implements LoggerService {
  private readonly log_ = createLogger('nest');
  log(message: unknown, context?: string): void {
    this.log_.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.log_.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.log_.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.log_.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.log_.trace({ context }, String(message));
  }
}
