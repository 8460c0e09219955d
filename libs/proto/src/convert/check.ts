import { HcpError } from '@hcp/core';
import type { Duration } from '../generated/google/protobuf/duration';
import type { Timestamp } from '../generated/google/protobuf/timestamp';

/**
 * The one INPUT_INVALID error every converter throws, naming the offending field in its
 * details; @hcp/platform maps it to INVALID_ARGUMENT with the reason in the trailers.
 */
export function invalidInput(field: string, message: string): HcpError {
  return new HcpError('INPUT_INVALID', `${field}: ${message}`, { field });
}

/** A repeated field no longer than `max`, checked before anything iterates it. */
export function boundedList<T>(list: readonly T[], field: string, max: number): readonly T[] {
  if (list.length > max) throw invalidInput(field, `has more than ${max} entries`);
  return list;
}

// Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
const MIN_SECONDS = -62_135_596_800;
const MAX_SECONDS = 253_402_300_799;

/** A Timestamp as epoch millis (sub-millisecond nanos dropped); undefined when unset. */
export function timestampFromProto(ts: Timestamp | undefined, field: string): number | undefined {
  if (ts === undefined) return undefined;
  if (ts.seconds < MIN_SECONDS || ts.seconds > MAX_SECONDS)
    throw invalidInput(`${field}.seconds`, 'is outside 0001-01-01..9999-12-31');
  if (ts.nanos < 0 || ts.nanos > 999_999_999)
    throw invalidInput(`${field}.nanos`, 'must be 0..999999999');
  return ts.seconds * 1000 + Math.floor(ts.nanos / 1_000_000);
}

// A Duration's documented range is +-10,000 years.
const MAX_DURATION_SECONDS = 315_576_000_000;

/** A Duration as millis (sub-millisecond nanos dropped); undefined when unset. */
export function durationFromProto(d: Duration | undefined, field: string): number | undefined {
  if (d === undefined) return undefined;
  const { seconds, nanos } = d;
  if (Math.abs(seconds) > MAX_DURATION_SECONDS)
    throw invalidInput(`${field}.seconds`, 'is outside the Duration range');
  if (Math.abs(nanos) > 999_999_999 || (seconds !== 0 && nanos !== 0 && seconds > 0 !== nanos > 0))
    throw invalidInput(
      `${field}.nanos`,
      'must be within +-999999999 and share the sign of seconds',
    );
  return seconds * 1000 + Math.trunc(nanos / 1_000_000);
}

/** A URL scheme as grants and resources carry it: lower case, without its colon. */
export const URL_SCHEME = /^[a-z][a-z0-9+.-]{0,31}$/;

/** A scheme from the wire: lower-case `[a-z][a-z0-9+.-]*`, at most 32 characters. */
export function schemeFromWire(value: string, field: string): string {
  if (!URL_SCHEME.test(value))
    throw invalidInput(field, 'must be a lower-case URL scheme without its colon (e.g. https)');
  return value;
}

/** A TCP port from the wire: 1..65535. */
export function portFromWire(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 65_535)
    throw invalidInput(field, 'must be a port 1..65535');
  return value;
}
