import type { ColumnType, Generated, Selectable } from 'kysely';
import type {
  ArgumentConstraint,
  Effect,
  ResourceArgument,
  ResourcePattern,
  RiskClass,
} from '@hcp/core';

/**
 * A bigint column. `pg` returns int8 as a string and PGlite as a number or
 * bigint, so reads go through `toNumber` in the repositories.
 */
export type Int8 = ColumnType<string | number | bigint, number, number>;

/**
 * A jsonb column written as JSON text: `pg` would otherwise send a JS array as
 * a PostgreSQL array literal, which jsonb rejects.
 */
export type Jsonb<T> = ColumnType<T, string, string>;

/**
 * A timestamptz column. Chosen over bigint epoch millis because rows stay
 * readable to an operator with psql, both drivers return a `Date` (no int8
 * string parsing) and millisecond values round-trip exactly (timestamptz keeps
 * microseconds). The database clock is never used: every `now` is the
 * service's injected clock, passed as a parameter.
 */
export type Timestamptz = ColumnType<Date, Date, Date>;

/** Grants of principals; one row per grant, revoked rows kept for audit and GetGrant. */
export interface GrantsTable {
  id: string;
  principal_id: string;
  capabilities: Jsonb<string[]>;
  resource_patterns: Jsonb<ResourcePattern[]>;
  scopes: Jsonb<string[]>;
  created_at: Timestamptz;
  expires_at: ColumnType<Date | null, Date | null, Date | null>;
  revoked_at: ColumnType<Date | null, Date | null, Date | null>;
  revoke_reason: string | null;
  /** The principal's revision at the grant's last write (create or revoke). */
  revision: Int8;
  /** Rules on call arguments; `[]` (the column default) for an unconstrained grant. */
  argument_constraints: Jsonb<ArgumentConstraint[]>;
}

/** The capability manifest, keyed `provider/tool`. */
export interface CapabilitiesTable {
  id: string;
  provider: string;
  tool: string;
  effects: Jsonb<Effect[]>;
  risk: RiskClass;
  approval_required: boolean;
  required_scopes: Jsonb<string[]>;
  /** Every resource argument in declaration order; `[]` (the column default) for none. */
  resource_arguments: Jsonb<ResourceArgument[]>;
  definition_digest: string | null;
  /** The manifest revision at this capability's last write. */
  revision: Int8;
  updated_at: Timestamptz;
}

/** Approvals bound to one exact call by digest. */
export interface ApprovalsTable {
  id: string;
  principal_id: string;
  capability_id: string;
  binding_digest: string;
  /** What the operator is shown; never carries secrets. */
  summary: string;
  state: 'pending' | 'approved' | 'denied';
  created_at: Timestamptz;
  expires_at: Timestamptz;
  decided_at: ColumnType<Date | null, Date | null, Date | null>;
  decided_by: string | null;
  consumed_at: ColumnType<Date | null, Date | null, Date | null>;
}

/** One monotonically increasing revision per principal that ever had a write. */
export interface PrincipalRevisionsTable {
  principal_id: string;
  revision: Int8;
}

/** The single-row manifest revision (id is always 1). */
export interface ManifestRevisionTable {
  id: Generated<number>;
  revision: Int8;
}

/** The grant-store schema as kysely sees it; the composition root opens the database with it. */
export interface GrantStoreDb {
  grants: GrantsTable;
  capabilities: CapabilitiesTable;
  approvals: ApprovalsTable;
  principal_revisions: PrincipalRevisionsTable;
  manifest_revision: ManifestRevisionTable;
}

/** A row of grants as selected. */
export type GrantRow = Selectable<GrantsTable>;
/** A row of capabilities as selected. */
export type CapabilityRow = Selectable<CapabilitiesTable>;
/** A row of approvals as selected. */
export type ApprovalRow = Selectable<ApprovalsTable>;

/** Reads an int8 however the driver delivered it; throws rather than silently lose precision. */
export function toNumber(value: string | number | bigint): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n))
    throw new Error(`int8 value ${String(value)} is not a safe integer`);
  return n;
}
