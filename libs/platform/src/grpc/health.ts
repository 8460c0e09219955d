import { status as grpcStatus, type Server, type ServerWritableStream } from '@grpc/grpc-js';
import { service as healthServiceDefinition } from 'grpc-health-check';

/** Values of grpc.health.v1.HealthCheckResponse.ServingStatus, as the package's loader spells them. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

interface CheckRequest {
  readonly service?: string;
}

/**
 * The standard grpc.health.v1.Health service. Written here instead of using
 * grpc-health-check's HealthImplementation because shutdown must end open
 * Watch streams; otherwise a watching load balancer holds the server open
 * until the drain bound runs out. The service definition is still the package's.
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{
    service: string;
    call: ServerWritableStream<CheckRequest, { status: string }>;
  }>();

  constructor(services: readonly string[]) {
    for (const s of ['', ...services]) this.statuses.set(s, 'SERVING');
  }

  /** Sets one service's status, or every service's when `service` is omitted, and tells watchers. */
  set(value: ServingStatus, service?: string): void {
    const names = service === undefined ? [...this.statuses.keys()] : [service];
    for (const name of names) this.statuses.set(name, value);
    for (const w of this.watchers) if (names.includes(w.service)) w.call.write({ status: value });
  }

  /** Ends every Watch stream (after the last status was written). */
  endWatches(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  /** Registers the service on a grpc-js server (before it starts serving). */
  addToServer(server: Server): void {
    server.addService(healthServiceDefinition, {
      check: (
        call: { request: CheckRequest },
        callback: (err: { code: number; details: string } | null, res?: { status: string }) => void,
      ) => {
        const value = this.statuses.get(call.request.service ?? '');
        if (value === undefined)
          callback({ code: grpcStatus.NOT_FOUND, details: 'unknown service' });
        else callback(null, { status: value });
      },
      watch: (call: ServerWritableStream<CheckRequest, { status: string }>) => {
        const service = call.request.service ?? '';
        const entry = { service, call };
        this.watchers.add(entry);
        call.on('cancelled', () => this.watchers.delete(entry));
        call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
      },
      list: (
        _call: unknown,
        callback: (err: null, res: { statuses: Record<string, { status: string }> }) => void,
      ) => {
        const statuses: Record<string, { status: string }> = {};
        for (const [name, value] of this.statuses) statuses[name] = { status: value };
        callback(null, { statuses });
      },
    });
  }
}
