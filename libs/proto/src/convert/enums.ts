import {
  REASON_CODE_NUMBERS,
  reasonCodeFromNumber,
  type ApprovalState,
  type Effect,
  type EndpointFamily,
  type InvariantId,
  type Outcome,
  type PrincipalKind,
  type ReasonCode,
  type ResourceKind,
  type ResourceRole,
  type RiskClass,
  type SessionState,
} from '@hcp/core';

/** A two-way map between a domain string union and its proto enum numbers. */
export interface EnumCodec<D extends string> {
  toWire(value: D): number;
  /** Undefined for 0 (UNSPECIFIED), -1 (UNRECOGNIZED) or an unknown number: callers reject it. */
  fromWire(value: number | null | undefined): D | undefined;
}

function codec<D extends string>(numbers: Readonly<Record<D, number>>): EnumCodec<D> {
  const back = new Map<number, D>();
  for (const [k, v] of Object.entries(numbers) as [D, number][]) back.set(v, k);
  return {
    toWire: (value) => numbers[value],
    fromWire: (value) => (typeof value === 'number' ? back.get(value) : undefined),
  };
}

/** Every domain enum and its proto counterpart, so no service hand-writes a number. */
export const enums = {
  principalKind: codec<PrincipalKind>({ agent: 1, operator: 2, service: 3 }),
  resourceKind: codec<ResourceKind>({ path: 1, url: 2, id: 3 }),
  resourceRole: codec<ResourceRole>({ read: 1, write: 2, delete: 3, fetch: 4, send: 5 }),
  rejectionStatus: codec<'denied' | 'unresolvable' | 'invalid'>({
    denied: 1,
    unresolvable: 2,
    invalid: 3,
  }),
  effect: codec<Effect>({ read: 1, write: 2, delete: 3, network: 4, execute: 5 }),
  risk: codec<RiskClass>({ low: 1, medium: 2, high: 3 }),
  approvalState: codec<ApprovalState>({ pending: 1, approved: 2, denied: 3 }),
  sessionState: codec<SessionState>({ active: 1, none: 2, unknown: 3, expired: 4, ended: 5 }),
  outcome: codec<Outcome>({ allow: 1, deny: 2 }),
  endpointFamily: codec<EndpointFamily>({
    'tools/call': 1,
    'tools/list': 2,
    'handle/peek': 3,
    'handle/pipe': 4,
    protocol: 5,
    grant: 6,
    approval: 7,
  }),
  invariant: codec<InvariantId>({ I1: 1, I2: 2, I3: 3, I4: 4, I5: 5, I6: 6, I7: 7, I8: 8 }),
  reason: {
    toWire: (value: ReasonCode) => REASON_CODE_NUMBERS[value],
    fromWire: (value: number | null | undefined) =>
      typeof value === 'number' ? reasonCodeFromNumber(value) : undefined,
  } satisfies EnumCodec<ReasonCode>,
};

/** The shape of google.protobuf.Timestamp in the generated messages (int64 seconds as a number). */
export interface WireTimestamp {
  seconds: number;
  nanos: number;
}

/** Epoch millis to a Timestamp. */
export function toTimestamp(ms: number): WireTimestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** A Timestamp to epoch millis; undefined when unset (null/undefined, or all zero). */
export function fromTimestamp(
  ts: { seconds?: number | string | null; nanos?: number | null } | null | undefined,
): number | undefined {
  if (ts === null || ts === undefined) return undefined;
  const seconds = Number(ts.seconds ?? 0);
  const nanos = Number(ts.nanos ?? 0);
  if (!Number.isFinite(seconds) || !Number.isFinite(nanos)) return undefined;
  if (seconds === 0 && nanos === 0) return undefined;
  return seconds * 1000 + Math.floor(nanos / 1_000_000);
}
