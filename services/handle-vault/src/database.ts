import type { ColumnType, Selectable } from 'kysely';

/**
 * A timestamptz column. As in grant-store: readable to an operator with psql,
 * a `Date` from both drivers, and the database clock is never used (every
 * `now` is the service's injected clock, passed as a parameter).
 */
export type Timestamptz = ColumnType<Date, Date, Date>;

/**
 * A bytea column. `pg` returns a Buffer and PGlite a Uint8Array, so reads go
 * through `toBuffer` in the repository.
 */
export type Bytea = ColumnType<Uint8Array, Uint8Array, Uint8Array>;

/** A jsonb column written as JSON text (`pg` would send an object differently from PGlite). */
export type Jsonb<T> = ColumnType<T, string, string>;

/**
 * Handles: metadata in the clear (policy reads labels, the sweeper reads
 * expiry), the payload only as AES-256-GCM ciphertext bound to (id, owner).
 */
export interface HandlesTable {
  id: string;
  owner_principal_id: string;
  producing_capability: string;
  labels: Jsonb<Record<string, string>>;
  created_at: Timestamptz;
  expires_at: Timestamptz;
  /** Plaintext payload length; what the quotas add up. */
  size_bytes: number;
  /** Which keyring entry sealed the payload. */
  key_id: string;
  iv: Bytea;
  ciphertext: Bytea;
  auth_tag: Bytea;
}

/** The vault schema as kysely sees it; the composition root opens the database with it. */
export interface VaultDb {
  handles: HandlesTable;
}

/** A row of handles as selected. */
export type HandleRow = Selectable<HandlesTable>;

/** A bytea value as a Buffer whichever driver delivered it (no copy). */
export function toBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}

/** Reads an int8 or numeric aggregate however the driver delivered it. */
export function toNumber(value: string | number | bigint | null): number {
  if (value === null) return 0;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`value ${String(value)} is not a safe integer`);
  return n;
}
