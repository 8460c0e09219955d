import type {
  Approval,
  ArgumentConstraint,
  Capability,
  Effect,
  Grant,
  JsonScalar,
  ResourceArgument,
  ResourceKind,
  ResourcePattern,
  RiskClass,
} from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import { core, grants } from '@hcp/proto';
import type { ApprovalRecord } from './approval.repository';
import type { ApprovalVerdict, ListApprovalsInput, RequestApprovalInput } from './approval.service';
import type { CreateGrantInput, ListGrantsInput } from './grant.service';
import { ARGUMENT_CONSTRAINT_LIMITS } from '@hcp/policy';
import { LIMITS } from './grant-store.validation';

// The gRPC server decodes requests with @grpc/proto-loader (keepCase false, longs Number,
// enums Number, defaults true, oneofs true), NOT with the ts-proto codecs: messages arrive
// as plain objects, unset sub-messages as null/undefined, and a oneof as its set member
// plus a virtual field naming the case. These types describe that shape; the readers
// below still treat every request as untrusted `unknown`.

/** google.protobuf.Timestamp as proto-loader carries it. */
export interface WireTimestamp {
  readonly seconds: number;
  readonly nanos: number;
}

/** hcp.core.v1.ResourcePattern as proto-loader carries it (oneof `pattern`). */
export interface WireResourcePattern {
  readonly pattern?: 'pathPrefix' | 'hostSet' | 'exactId';
  readonly pathPrefix?: string;
  readonly hostSet?: { readonly hosts: readonly string[]; readonly cidrs: readonly string[] };
  readonly exactId?: string;
}

/** hcp.core.v1.ScalarValue as proto-loader carries it (oneof `value`). */
export interface WireScalarValue {
  readonly value?: 'stringValue' | 'numberValue' | 'boolValue' | 'nullValue';
  readonly stringValue?: string;
  readonly numberValue?: number;
  readonly boolValue?: boolean;
  readonly nullValue?: boolean;
}

/** hcp.core.v1.ArgumentConstraint as proto-loader carries it (oneof `rule`). */
export interface WireArgumentConstraint {
  readonly argument: string;
  readonly rule?: 'oneOf' | 'pattern' | 'maxLength' | 'range' | 'absent';
  readonly oneOf?: { readonly values: readonly WireScalarValue[] };
  readonly pattern?: string;
  readonly maxLength?: number;
  readonly range?: { readonly min?: number; readonly max?: number };
  readonly absent?: Readonly<Record<string, never>>;
}

/** hcp.core.v1.Grant as proto-loader carries it. */
export interface WireGrant {
  readonly id: string;
  readonly principalId: string;
  readonly capabilities: readonly string[];
  readonly resourcePatterns: readonly WireResourcePattern[];
  readonly scopes: readonly string[];
  readonly createdAt?: WireTimestamp;
  readonly expiresAt?: WireTimestamp;
  readonly revokedAt?: WireTimestamp;
  readonly revision: number;
  readonly argumentConstraints: readonly WireArgumentConstraint[];
}

/** hcp.core.v1.Capability as proto-loader carries it. */
export interface WireCapability {
  readonly id: string;
  readonly provider: string;
  readonly tool: string;
  readonly effects: readonly number[];
  readonly risk: number;
  readonly approvalRequired: boolean;
  readonly requiredScopes: readonly string[];
  readonly resourceArgument?: { readonly name: string; readonly canonicalizer: number };
  readonly definitionDigest: string;
}

/** hcp.core.v1.Approval as proto-loader carries it. */
export interface WireApproval {
  readonly id: string;
  readonly principalId: string;
  readonly capabilityId: string;
  readonly bindingDigest: string;
  readonly state: number;
  readonly expiresAt?: WireTimestamp;
  readonly consumedAt?: WireTimestamp;
  readonly decidedBy: string;
}

/** hcp.grants.v1.PendingApproval (and the extra fields of GetApprovalResponse) as proto-loader carries it. */
export interface WireApprovalRecord {
  readonly approval: WireApproval;
  readonly summary: string;
  readonly createdAt: WireTimestamp;
}

// ---------- readers for untrusted plain objects ----------

type Obj = Readonly<Record<string, unknown>>;

/** The request itself; anything but an object is malformed. */
export function requestObject(value: unknown): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument('request', 'must be a message');
  return value as Obj;
}

/** A string field; unset reads as '' (proto3's default). */
export function readString(obj: Obj, key: string, field = key): string {
  const v = obj[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalidArgument(field, 'must be a string');
  return v;
}

function readBool(obj: Obj, key: string, field = key): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw invalidArgument(field, 'must be a boolean');
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

/** A repeated field, bounded before anything iterates it; unset reads as []. */
function readList(obj: Obj, key: string, field: string, max: number): readonly unknown[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidArgument(field, 'must be a list');
  if (v.length > max) throw invalidArgument(field, `has more than ${max} entries`);
  return v as readonly unknown[];
}

function readStringList(obj: Obj, key: string, field: string, max: number): string[] {
  return readList(obj, key, field, max).map((v, i) => {
    if (typeof v !== 'string') throw invalidArgument(`${field}[${i}]`, 'must be a string');
    return v;
  });
}

/** A sub-message; unset (null/undefined) reads as undefined. */
function readMessage(obj: Obj, key: string, field: string): Obj | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(field, 'must be a message');
  return v as Obj;
}

// Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
const MIN_SECONDS = -62_135_596_800;
const MAX_SECONDS = 253_402_300_799;

/** A Timestamp as epoch millis (sub-millisecond nanos are dropped); undefined when unset. */
export function timestampFromWire(obj: Obj, key: string, field = key): number | undefined {
  const ts = readMessage(obj, key, field);
  if (ts === undefined) return undefined;
  const seconds = readInt(ts, 'seconds', `${field}.seconds`);
  const nanos = readInt(ts, 'nanos', `${field}.nanos`);
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS)
    throw invalidArgument(`${field}.seconds`, 'is outside 0001-01-01..9999-12-31');
  if (nanos < 0 || nanos > 999_999_999)
    throw invalidArgument(`${field}.nanos`, 'must be 0..999999999');
  return seconds * 1000 + Math.floor(nanos / 1_000_000);
}

/** Epoch millis as a Timestamp. */
export function timestampToWire(ms: number): WireTimestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

// A Duration's documented range is +-10,000 years.
const MAX_DURATION_SECONDS = 315_576_000_000;

/** A Duration as millis; undefined when unset. */
export function durationFromWire(obj: Obj, key: string, field = key): number | undefined {
  const d = readMessage(obj, key, field);
  if (d === undefined) return undefined;
  const seconds = readInt(d, 'seconds', `${field}.seconds`);
  const nanos = readInt(d, 'nanos', `${field}.nanos`);
  if (Math.abs(seconds) > MAX_DURATION_SECONDS)
    throw invalidArgument(`${field}.seconds`, 'is outside the Duration range');
  if (Math.abs(nanos) > 999_999_999 || (seconds !== 0 && nanos !== 0 && seconds > 0 !== nanos > 0))
    throw invalidArgument(
      `${field}.nanos`,
      'must be within +-999999999 and share the sign of seconds',
    );
  return seconds * 1000 + Math.trunc(nanos / 1_000_000);
}

/** A closed enum read through a table; 0 (UNSPECIFIED) and unknown numbers are refused by name. */
function readEnum<T>(
  value: unknown,
  field: string,
  table: ReadonlyMap<number, T>,
  unspecifiedName: string,
): T {
  if (value === 0 || value === undefined || value === null)
    throw invalidArgument(field, `${unspecifiedName} is not allowed`);
  const known = typeof value === 'number' ? table.get(value) : undefined;
  if (known === undefined)
    throw invalidArgument(
      field,
      typeof value === 'number' ? `unknown value ${value}` : 'must be an enum number',
    );
  return known;
}

// ---------- enum tables ----------

const EFFECTS: ReadonlyMap<number, Effect> = new Map<number, Effect>([
  [core.Effect.EFFECT_READ, 'read'],
  [core.Effect.EFFECT_WRITE, 'write'],
  [core.Effect.EFFECT_DELETE, 'delete'],
  [core.Effect.EFFECT_NETWORK, 'network'],
  [core.Effect.EFFECT_EXECUTE, 'execute'],
]);
const RISKS: ReadonlyMap<number, RiskClass> = new Map<number, RiskClass>([
  [core.RiskClass.RISK_CLASS_LOW, 'low'],
  [core.RiskClass.RISK_CLASS_MEDIUM, 'medium'],
  [core.RiskClass.RISK_CLASS_HIGH, 'high'],
]);
const RESOURCE_KINDS: ReadonlyMap<number, ResourceKind> = new Map<number, ResourceKind>([
  [core.ResourceKind.RESOURCE_KIND_PATH, 'path'],
  [core.ResourceKind.RESOURCE_KIND_URL, 'url'],
  [core.ResourceKind.RESOURCE_KIND_ID, 'id'],
]);
const VERDICTS: ReadonlyMap<number, ApprovalVerdict> = new Map<number, ApprovalVerdict>([
  [grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE, 'approve'],
  [grants.ApprovalVerdict.APPROVAL_VERDICT_DENY, 'deny'],
]);

function inverse<T>(table: ReadonlyMap<number, T>): ReadonlyMap<T, number> {
  return new Map([...table].map(([n, v]) => [v, n]));
}
const EFFECT_NUMBERS = inverse(EFFECTS);
const RISK_NUMBERS = inverse(RISKS);
const RESOURCE_KIND_NUMBERS = inverse(RESOURCE_KINDS);
const APPROVAL_STATE_NUMBERS: Readonly<Record<Approval['state'], number>> = {
  pending: core.ApprovalState.APPROVAL_STATE_PENDING,
  approved: core.ApprovalState.APPROVAL_STATE_APPROVED,
  denied: core.ApprovalState.APPROVAL_STATE_DENIED,
};

// ---------- requests -> domain ----------

const PATTERN_CASES = ['pathPrefix', 'hostSet', 'exactId'] as const;

/** One ResourcePattern; the oneof must name exactly one case. */
export function resourcePatternFromWire(value: unknown, field: string): ResourcePattern {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(field, 'must be a message');
  const obj = value as Obj;
  // proto-loader names the set case in the virtual oneof field; fall back to the one member present.
  const named = obj['pattern'];
  const present = PATTERN_CASES.filter((k) => obj[k] !== undefined && obj[k] !== null);
  const which = typeof named === 'string' ? named : present.length === 1 ? present[0] : undefined;
  switch (which) {
    case 'pathPrefix':
      return { kind: 'path_prefix', prefix: readString(obj, 'pathPrefix', `${field}.pathPrefix`) };
    case 'exactId':
      return { kind: 'exact_id', id: readString(obj, 'exactId', `${field}.exactId`) };
    case 'hostSet': {
      const hs = readMessage(obj, 'hostSet', `${field}.hostSet`) ?? {};
      return {
        kind: 'host_set',
        hosts: readStringList(hs, 'hosts', `${field}.hostSet.hosts`, LIMITS.hostsPerSet),
        cidrs: readStringList(hs, 'cidrs', `${field}.hostSet.cidrs`, LIMITS.cidrsPerSet),
      };
    }
    case undefined:
    default:
      throw invalidArgument(field, 'must set exactly one of pathPrefix, hostSet, exactId');
  }
}

const RULE_CASES = ['oneOf', 'pattern', 'maxLength', 'range', 'absent'] as const;
const SCALAR_CASES = ['stringValue', 'numberValue', 'boolValue', 'nullValue'] as const;

/** The set member of a oneof: the case proto-loader names, or the one member present. */
function oneofCase<K extends string>(
  obj: Obj,
  virtual: string,
  cases: readonly K[],
): K | undefined {
  const named = obj[virtual];
  if (typeof named === 'string')
    return (cases as readonly string[]).includes(named) ? (named as K) : undefined;
  const present = cases.filter((k) => obj[k] !== undefined && obj[k] !== null);
  return present.length === 1 ? present[0] : undefined;
}

function scalarFromWire(value: unknown, field: string): JsonScalar {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(field, 'must be a message');
  const obj = value as Obj;
  switch (oneofCase(obj, 'value', SCALAR_CASES)) {
    case 'stringValue':
      return readString(obj, 'stringValue', `${field}.stringValue`);
    case 'numberValue': {
      const n = obj['numberValue'];
      if (typeof n !== 'number') throw invalidArgument(`${field}.numberValue`, 'must be a number');
      return n;
    }
    case 'boolValue':
      return readBool(obj, 'boolValue', `${field}.boolValue`);
    case 'nullValue':
      if (!readBool(obj, 'nullValue', `${field}.nullValue`))
        throw invalidArgument(`${field}.nullValue`, 'must be true when set');
      return null;
    case undefined:
      throw invalidArgument(
        field,
        'must set exactly one of stringValue, numberValue, boolValue, nullValue',
      );
  }
}

function optionalNumber(obj: Obj, key: string, field: string): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw invalidArgument(field, 'must be a number');
  return v;
}

/** One ArgumentConstraint; the oneof must name exactly one rule (GrantService checks the rule itself). */
export function argumentConstraintFromWire(value: unknown, field: string): ArgumentConstraint {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(field, 'must be a message');
  const obj = value as Obj;
  const argument = readString(obj, 'argument', `${field}.argument`);
  switch (oneofCase(obj, 'rule', RULE_CASES)) {
    case 'oneOf': {
      const set = readMessage(obj, 'oneOf', `${field}.oneOf`) ?? {};
      const values = readList(
        set,
        'values',
        `${field}.oneOf.values`,
        ARGUMENT_CONSTRAINT_LIMITS.valuesPerOneOf,
      ).map((v, i) => scalarFromWire(v, `${field}.oneOf.values[${i}]`));
      return { argument, kind: 'one_of', values };
    }
    case 'pattern':
      return { argument, kind: 'pattern', pattern: readString(obj, 'pattern', `${field}.pattern`) };
    case 'maxLength':
      return {
        argument,
        kind: 'max_length',
        maxLength: readInt(obj, 'maxLength', `${field}.maxLength`),
      };
    case 'range': {
      const range = readMessage(obj, 'range', `${field}.range`) ?? {};
      const min = optionalNumber(range, 'min', `${field}.range.min`);
      const max = optionalNumber(range, 'max', `${field}.range.max`);
      return {
        argument,
        kind: 'range',
        ...(min !== undefined && { min }),
        ...(max !== undefined && { max }),
      };
    }
    case 'absent':
      return { argument, kind: 'absent' };
    case undefined:
      throw invalidArgument(
        field,
        'must set exactly one of oneOf, pattern, maxLength, range, absent',
      );
  }
}

/** A domain argument constraint as the oneof proto-loader serialises. */
export function argumentConstraintToWire(c: ArgumentConstraint): WireArgumentConstraint {
  switch (c.kind) {
    case 'one_of':
      return {
        argument: c.argument,
        rule: 'oneOf',
        oneOf: {
          values: c.values.map((v): WireScalarValue => {
            if (v === null) return { value: 'nullValue', nullValue: true };
            if (typeof v === 'string') return { value: 'stringValue', stringValue: v };
            if (typeof v === 'number') return { value: 'numberValue', numberValue: v };
            return { value: 'boolValue', boolValue: v };
          }),
        },
      };
    case 'pattern':
      return { argument: c.argument, rule: 'pattern', pattern: c.pattern };
    case 'max_length':
      return { argument: c.argument, rule: 'maxLength', maxLength: c.maxLength };
    case 'range':
      return {
        argument: c.argument,
        rule: 'range',
        range: {
          ...(c.min !== undefined && { min: c.min }),
          ...(c.max !== undefined && { max: c.max }),
        },
      };
    case 'absent':
      return { argument: c.argument, rule: 'absent', absent: {} };
  }
}

/** CreateGrantRequest -> service input (shape only; GrantService applies the rules). */
export function createGrantInputFromWire(request: unknown): CreateGrantInput {
  const req = requestObject(request);
  const expiresAt = timestampFromWire(req, 'expiresAt');
  return {
    principalId: readString(req, 'principalId'),
    capabilities: readStringList(req, 'capabilities', 'capabilities', LIMITS.capabilitiesPerGrant),
    resourcePatterns: readList(
      req,
      'resourcePatterns',
      'resourcePatterns',
      LIMITS.patternsPerGrant,
    ).map((p, i) => resourcePatternFromWire(p, `resourcePatterns[${i}]`)),
    scopes: readStringList(req, 'scopes', 'scopes', LIMITS.scopesPerGrant),
    ...(expiresAt !== undefined && { expiresAt }),
    argumentConstraints: readList(
      req,
      'argumentConstraints',
      'argumentConstraints',
      ARGUMENT_CONSTRAINT_LIMITS.constraintsPerGrant,
    ).map((c, i) => argumentConstraintFromWire(c, `argumentConstraints[${i}]`)),
  };
}

/** ListGrantsRequest -> service input. */
export function listGrantsInputFromWire(request: unknown): ListGrantsInput {
  const req = requestObject(request);
  return {
    principalId: readString(req, 'principalId'),
    includeInactive: readBool(req, 'includeInactive'),
    pageSize: readInt(req, 'pageSize'),
    pageToken: readString(req, 'pageToken'),
  };
}

/** hcp.core.v1.Capability -> domain; every enum checked, UNSPECIFIED refused by field. */
export function capabilityFromWire(value: unknown, field: string): Capability {
  if (value === undefined || value === null) throw invalidArgument(field, 'is required');
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalidArgument(field, 'must be a message');
  const obj = value as Obj;
  const effects = readList(obj, 'effects', `${field}.effects`, LIMITS.effectsPerCapability).map(
    (e, i) => readEnum(e, `${field}.effects[${i}]`, EFFECTS, 'EFFECT_UNSPECIFIED'),
  );
  const arg = readMessage(obj, 'resourceArgument', `${field}.resourceArgument`);
  let resourceArgument: ResourceArgument | undefined;
  if (arg !== undefined) {
    resourceArgument = {
      name: readString(arg, 'name', `${field}.resourceArgument.name`),
      canonicalizer: readEnum(
        arg['canonicalizer'],
        `${field}.resourceArgument.canonicalizer`,
        RESOURCE_KINDS,
        'RESOURCE_KIND_UNSPECIFIED',
      ),
    };
  }
  const definitionDigest = readString(obj, 'definitionDigest', `${field}.definitionDigest`);
  return {
    id: readString(obj, 'id', `${field}.id`),
    provider: readString(obj, 'provider', `${field}.provider`),
    tool: readString(obj, 'tool', `${field}.tool`),
    effects,
    risk: readEnum(obj['risk'], `${field}.risk`, RISKS, 'RISK_CLASS_UNSPECIFIED'),
    approvalRequired: readBool(obj, 'approvalRequired', `${field}.approvalRequired`),
    requiredScopes: readStringList(
      obj,
      'requiredScopes',
      `${field}.requiredScopes`,
      LIMITS.scopesPerGrant,
    ),
    ...(resourceArgument !== undefined && { resourceArgument }),
    ...(definitionDigest !== '' && { definitionDigest }),
  };
}

/** RequestApprovalRequest -> service input. */
export function requestApprovalInputFromWire(request: unknown): RequestApprovalInput {
  const req = requestObject(request);
  const ttlMs = durationFromWire(req, 'ttl');
  return {
    principalId: readString(req, 'principalId'),
    capabilityId: readString(req, 'capabilityId'),
    bindingDigest: readString(req, 'bindingDigest'),
    ...(ttlMs !== undefined && { ttlMs }),
    summary: readString(req, 'summary'),
  };
}

/** DecideApprovalRequest -> (id, verdict); the operator comes from the credential, not the body. */
export function decideApprovalInputFromWire(request: unknown): {
  approvalId: string;
  verdict: ApprovalVerdict;
} {
  const req = requestObject(request);
  return {
    approvalId: readString(req, 'approvalId'),
    verdict: readEnum(req['verdict'], 'verdict', VERDICTS, 'APPROVAL_VERDICT_UNSPECIFIED'),
  };
}

/** ListApprovalsRequest -> service input. */
export function listApprovalsInputFromWire(request: unknown): ListApprovalsInput {
  const req = requestObject(request);
  return {
    principalId: readString(req, 'principalId'),
    pageSize: readInt(req, 'pageSize'),
    pageToken: readString(req, 'pageToken'),
  };
}

// ---------- domain -> responses ----------

/** A domain resource pattern as the oneof proto-loader serialises. */
export function resourcePatternToWire(p: ResourcePattern): WireResourcePattern {
  switch (p.kind) {
    case 'path_prefix':
      return { pattern: 'pathPrefix', pathPrefix: p.prefix };
    case 'host_set':
      return { pattern: 'hostSet', hostSet: { hosts: [...p.hosts], cidrs: [...p.cidrs] } };
    case 'exact_id':
      return { pattern: 'exactId', exactId: p.id };
  }
}

/** A domain grant as hcp.core.v1.Grant. */
export function grantToWire(g: Grant): WireGrant {
  return {
    id: g.id,
    principalId: g.principalId,
    capabilities: [...g.capabilities],
    resourcePatterns: g.resourcePatterns.map(resourcePatternToWire),
    scopes: [...g.scopes],
    createdAt: timestampToWire(g.createdAt),
    ...(g.expiresAt !== undefined && { expiresAt: timestampToWire(g.expiresAt) }),
    ...(g.revokedAt !== undefined && { revokedAt: timestampToWire(g.revokedAt) }),
    revision: g.revision ?? 0,
    argumentConstraints: (g.argumentConstraints ?? []).map(argumentConstraintToWire),
  };
}

/** A domain capability as hcp.core.v1.Capability. */
export function capabilityToWire(c: Capability): WireCapability {
  return {
    id: c.id,
    provider: c.provider,
    tool: c.tool,
    effects: c.effects.map((e) => EFFECT_NUMBERS.get(e) ?? 0),
    risk: RISK_NUMBERS.get(c.risk) ?? 0,
    approvalRequired: c.approvalRequired,
    requiredScopes: [...c.requiredScopes],
    ...(c.resourceArgument !== undefined && {
      resourceArgument: {
        name: c.resourceArgument.name,
        canonicalizer: RESOURCE_KIND_NUMBERS.get(c.resourceArgument.canonicalizer) ?? 0,
      },
    }),
    definitionDigest: c.definitionDigest ?? '',
  };
}

/** A domain approval as hcp.core.v1.Approval. */
export function approvalToWire(a: Approval): WireApproval {
  return {
    id: a.id,
    principalId: a.principalId,
    capabilityId: a.capabilityId,
    bindingDigest: a.bindingDigest,
    state: APPROVAL_STATE_NUMBERS[a.state],
    expiresAt: timestampToWire(a.expiresAt),
    ...(a.consumedAt !== undefined && { consumedAt: timestampToWire(a.consumedAt) }),
    decidedBy: a.decidedBy ?? '',
  };
}

/** An approval with its summary and request time, as PendingApproval / GetApprovalResponse carry them. */
export function approvalRecordToWire(r: ApprovalRecord): WireApprovalRecord {
  return {
    approval: approvalToWire(r.approval),
    summary: r.summary,
    createdAt: timestampToWire(r.createdAt),
  };
}
