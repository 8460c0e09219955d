import { invalidArgument } from '@hcp/platform';
import type { DeleteInput, PeekInput, PutInput, ResolveInput } from './handle.service';

// The gRPC server decodes requests with @grpc/proto-loader (keepCase false, longs Number,
// enums Number, defaults true): plain objects, camelCase fields, bytes as Buffer, a map as
// a plain object, an unset Duration as null. The readers treat every request as untrusted
// `unknown`; content rules (lengths, shapes) live in handle-vault.validation.ts.

type Obj = Readonly<Record<string, unknown>>;

/** The request itself; anything but an object is malformed. */
export function requestObject(value: unknown): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument('request', 'must be a message');
  return value as Obj;
}

/** A string field; unset reads as '' (proto3's default). */
export function readString(obj: Obj, key: string): string {
  const v = obj[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalidArgument(key, 'must be a string');
  return v;
}

function readInt(obj: Obj, key: string, field = key): number {
  const v = obj[key];
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' && /^-?[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    throw invalidArgument(field, 'must be an integer');
  return n;
}

function readBytes(obj: Obj, key: string): Uint8Array {
  const v = obj[key];
  if (v === undefined || v === null) return new Uint8Array(0);
  if (!(v instanceof Uint8Array)) throw invalidArgument(key, 'must be bytes');
  return v;
}

function readStringMap(obj: Obj, key: string): Record<string, string> {
  const v = obj[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(key, 'must be a map');
  const entries = Object.entries(v as Obj);
  for (const [k, value] of entries) {
    if (typeof value !== 'string') throw invalidArgument(`${key}[${k}]`, 'must be a string');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

// A Duration's documented range is +-10,000 years.
const MAX_DURATION_SECONDS = 315_576_000_000;

/** A Duration as millis (sub-millisecond nanos dropped); undefined when unset. */
export function durationFromWire(obj: Obj, key: string): number | undefined {
  const d = obj[key];
  if (d === undefined || d === null) return undefined;
  if (typeof d !== 'object' || Array.isArray(d)) throw invalidArgument(key, 'must be a message');
  const seconds = readInt(d as Obj, 'seconds', `${key}.seconds`);
  const nanos = readInt(d as Obj, 'nanos', `${key}.nanos`);
  if (Math.abs(seconds) > MAX_DURATION_SECONDS)
    throw invalidArgument(`${key}.seconds`, 'is outside the Duration range');
  if (Math.abs(nanos) > 999_999_999 || (seconds !== 0 && nanos !== 0 && seconds > 0 !== nanos > 0))
    throw invalidArgument(
      `${key}.nanos`,
      'must be within +-999999999 and share the sign of seconds',
    );
  return seconds * 1000 + Math.trunc(nanos / 1_000_000);
}

/** PutRequest -> PutInput. */
export function putInputFromWire(request: unknown): PutInput {
  const req = requestObject(request);
  const ttlMs = durationFromWire(req, 'ttl');
  return {
    ownerPrincipalId: readString(req, 'ownerPrincipalId'),
    producingCapability: readString(req, 'producingCapability'),
    labels: readStringMap(req, 'labels'),
    ...(ttlMs !== undefined && { ttlMs }),
    payload: readBytes(req, 'payload'),
  };
}

/** PeekRequest -> PeekInput. */
export function peekInputFromWire(request: unknown): PeekInput {
  const req = requestObject(request);
  return {
    principalId: readString(req, 'principalId'),
    handleId: readString(req, 'handleId'),
    maxBytes: readInt(req, 'maxBytes'),
  };
}

/** ResolveForPipeRequest -> ResolveInput. */
export function resolveInputFromWire(request: unknown): ResolveInput {
  const req = requestObject(request);
  return {
    principalId: readString(req, 'principalId'),
    handleId: readString(req, 'handleId'),
    decisionId: readString(req, 'decisionId'),
  };
}

/** DeleteRequest -> DeleteInput. */
export function deleteInputFromWire(request: unknown): DeleteInput {
  const req = requestObject(request);
  return { principalId: readString(req, 'principalId'), handleId: readString(req, 'handleId') };
}
