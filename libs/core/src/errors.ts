import type { ReasonCode } from './reason-codes';

/**
 * The one error type libraries throw for an expected refusal. It carries a
 * reason code and safe metadata; each service maps it to gRPC status, JSON-RPC
 * error or HTTP problem in one place.
 */
export class HcpError extends Error {
  override readonly name = 'HcpError';
  constructor(
    readonly reason: ReasonCode,
    message: string,
    /** Safe, non-secret details (field names, limits); shown to the caller. */
    readonly details: Readonly<Record<string, string | number | boolean>> = {},
  ) {
    super(message);
  }
}

/** Compile-time exhaustiveness for switches over closed unions; throws if reached at run time. */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}
