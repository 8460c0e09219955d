import type { ColumnType, Generated, Selectable } from 'kysely';

/**
 * A bigint column. `pg` returns int8 as a string and PGlite as a number or
 * bigint, so reads go through `toNumber`.
 */
export type Int8 = ColumnType<string | number | bigint, number, number>;

/** A jsonb column written as JSON text (`pg` would send a JS array as a PostgreSQL array literal). */
export type Jsonb<T> = ColumnType<T, string, string>;

/** A timestamptz column; both drivers return a `Date`, and millisecond values round-trip exactly. */
export type Timestamptz = ColumnType<Date, Date, Date>;

/** A nullable text column. */
type NullableText = ColumnType<string | null, string | null, string | null>;

/**
 * The chain itself: one row per audit entry, append-only (a trigger refuses UPDATE, DELETE and
 * TRUNCATE). Columns mirror AuditEntry; absent optional fields are NULL. `source` and
 * `ingested_at` are ingest metadata and are NOT covered by the hash.
 */
export interface AuditEntriesTable {
  seq: Int8;
  id: string;
  time: Timestamptz;
  decision_id: string;
  principal_id: NullableText;
  endpoint_family: string;
  capability_id: NullableText;
  resource_raw: NullableText;
  resource_canonical: NullableText;
  outcome: string;
  reason: string;
  invariant: NullableText;
  /** `check` is an SQL keyword, hence the suffix. */
  check_name: NullableText;
  matched_grant_id: NullableText;
  missing_grant: NullableText;
  rule: NullableText;
  approval_id: NullableText;
  handle_ids: Jsonb<string[]>;
  trace_id: NullableText;
  prev_hash: string;
  hash: string;
  source: string;
  ingested_at: Timestamptz;
  /**
   * True when the row's strings are stored escaped (stored-text.ts) because one of them had a NUL
   * or a lone surrogate; false (the default, and every row before it existed) when stored as sent.
   */
  text_escaped: ColumnType<boolean, boolean | undefined, never>;
}

/**
 * The single-row chain head (id is always 1): the seq and hash of the last entry. Ingest locks
 * this row, so appends are serialised even across several audit-log replicas, and verify
 * compares it with the last entry to detect a truncated tail.
 */
export interface AuditChainHeadTable {
  id: Generated<number>;
  seq: Int8;
  hash: string;
}

/** The audit-log schema as kysely sees it. */
export interface AuditDb {
  audit_entries: AuditEntriesTable;
  audit_chain_head: AuditChainHeadTable;
}

/** A row of audit_entries as selected. */
export type AuditEntryRow = Selectable<AuditEntriesTable>;

/** Reads an int8 however the driver delivered it; throws rather than silently lose precision. */
export function toNumber(value: string | number | bigint): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n))
    throw new Error(`int8 value ${String(value)} is not a safe integer`);
  return n;
}
