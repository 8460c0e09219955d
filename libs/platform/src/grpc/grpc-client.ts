import {
  credentials,
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { SpanStatusCode } from '@opentelemetry/api';
import { injectGrpcMetadata, startSpan } from '../telemetry/telemetry';

/** The constructor shape of a ts-proto grpc-js client (e.g. `grants.GrantStoreClient`). */
export type GrpcClientConstructor<T> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: Partial<ClientOptions>,
) => T;

/** Creates a plaintext client for a service URL (`host:port`, an optional `grpc://` prefix is dropped). */
export function createGrpcClient<T>(
  ClientCtor: GrpcClientConstructor<T>,
  url: string,
  options: Partial<ClientOptions> = {},
): T {
  return new ClientCtor(url.replace(/^grpc:\/\//, ''), credentials.createInsecure(), options);
}

/** A ts-proto unary method (its widest overload), bound to its client. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Per-call options; every call has a deadline so a stuck server cannot hang the caller. */
export interface CallUnaryOptions {
  /** Default 2000 ms. */
  readonly deadlineMs?: number;
  readonly metadata?: Metadata;
}

/** Default deadline of callUnary. */
export const DEFAULT_DEADLINE_MS = 2000;

/**
 * Promise form of a unary call with a deadline. Rejects with the original grpc-js
 * ServiceError, so callers can read `code` and the reason via reasonOfGrpcError.
 */
export function callUnary<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  options: CallUnaryOptions = {},
): Promise<Res> {
  const metadata = options.metadata ?? new Metadata();
  const deadline = new Date(Date.now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS));
  const { span, ctx } = startSpan(`grpc.client ${method.name.replace(/^bound /, '')}`, 'client');
  injectGrpcMetadata(metadata, ctx);
  return new Promise<Res>((resolve, reject) => {
    method(request, metadata, { deadline }, (error, response) => {
      if (error !== null) {
        span.setAttribute('rpc.grpc.status_code', error.code);
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        reject(error);
      } else {
        span.end();
        resolve(response);
      }
    });
  });
}
