import { Inject, Injectable } from '@nestjs/common';
import { sql, type Kysely } from 'kysely';
import type { HandleRecord } from '@hcp/core';
import { toBuffer, toNumber, type HandleRow, type VaultDb } from './database';
import { VAULT_DB } from './handle-vault.tokens';
import type { SealedPayload } from './payload-cipher';

/** A handle as stored: its metadata and its sealed payload. */
export interface StoredHandle {
  readonly record: HandleRecord;
  readonly sealed: SealedPayload;
}

/** What became of one handle given to putWithinQuota. */
export interface PutOutcome {
  /** False: refused, it would have taken its owner over the quota; nothing stored. */
  readonly stored: boolean;
  /** The owner's live bytes it was checked against (without itself). */
  readonly usedBytes: number;
}

/** I/O for the handles table; no rules (HandleService owns them). */
@Injectable()
export class HandleRepository {
  constructor(@Inject(VAULT_DB) private readonly db: Kysely<VaultDb>) {}

  /**
   * Stores each handle unless it would take its owner's live bytes over `maxPrincipalBytes`,
   * in one statement (the handle_vault_put function, ADR 0005 §1): the owners' advisory locks
   * in key order, then per handle, in the given order, the live-bytes sum (counting the ones
   * stored before it in this call) and the insert. One outcome per handle, in input order; a
   * database error stores none of them.
   */
  async putWithinQuota(
    handles: readonly StoredHandle[],
    maxPrincipalBytes: number,
  ): Promise<PutOutcome[]> {
    if (handles.length === 0) return [];
    const records = handles.map((h) => h.record);
    const sealed = handles.map((h) => h.sealed);
    const ciphertexts =
      sealed.length === 1 ? sealed[0]!.ciphertext : Buffer.concat(sealed.map((s) => s.ciphertext));
    const { rows } = await sql<{
      put_index: number;
      used_bytes: string | number | bigint;
      stored: boolean;
    }>`select put_index, used_bytes, stored from handle_vault_put(
        ${records.map((r) => r.id)}::text[],
        ${records.map((r) => r.ownerPrincipalId)}::text[],
        ${records.map((r) => r.producingCapability)}::text[],
        ${records.map((r) => JSON.stringify(r.labels))}::text[],
        ${records.map((r) => r.createdAt)}::bigint[],
        ${records.map((r) => r.expiresAt)}::bigint[],
        ${records.map((r) => r.sizeBytes)}::integer[],
        ${sealed.map((s) => s.keyId)}::text[],
        ${sealed.map((s) => s.iv)}::bytea[],
        ${sealed.map((s) => s.authTag)}::bytea[],
        ${ciphertexts}::bytea,
        ${sealed.map((s) => s.ciphertext.length)}::integer[],
        ${maxPrincipalBytes}::bigint)`.execute(this.db);
    const outcomes: PutOutcome[] = new Array<PutOutcome>(handles.length);
    for (const row of rows)
      outcomes[row.put_index - 1] = { stored: row.stored, usedBytes: toNumber(row.used_bytes) };
    for (let i = 0; i < handles.length; i++)
      if (outcomes[i] === undefined)
        throw new Error(`handle_vault_put returned no outcome for ${i + 1}`);
    return outcomes;
  }

  async findById(id: string): Promise<StoredHandle | undefined> {
    const row = await this.db
      .selectFrom('handles')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : storedFromRow(row);
  }

  /** Deletes the handle if this principal owns it; false when there was nothing to delete. */
  async deleteOwned(id: string, ownerPrincipalId: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('handles')
      .where('id', '=', id)
      .where('owner_principal_id', '=', ownerPrincipalId)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Moves expires_at to `at` unless it is already earlier; the updated record, or undefined when unknown. */
  async expire(id: string, at: number): Promise<HandleRecord | undefined> {
    const when = new Date(at);
    const row = await this.db
      .updateTable('handles')
      // Never before created_at (a replica's clock behind the writer's), never later than it was.
      .set({
        expires_at: sql<Date>`least(expires_at, greatest(created_at, ${when}::timestamptz))`,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : recordFromRow(row);
  }

  /** Deletes up to `limit` rows that expired at or before `cutoff`; how many went. */
  async deleteExpired(cutoff: number, limit: number): Promise<number> {
    const result = await this.db
      .deleteFrom('handles')
      .where(
        'id',
        'in',
        this.db
          .selectFrom('handles')
          .select('id')
          .where('expires_at', '<=', new Date(cutoff))
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Live rows sealed under a key other than `keyId`, in id order after `afterId`. */
  async liveNotUnderKey(
    keyId: string,
    now: number,
    afterId: string,
    limit: number,
  ): Promise<StoredHandle[]> {
    const rows = await this.db
      .selectFrom('handles')
      .selectAll()
      .where('key_id', '<>', keyId)
      .where('expires_at', '>', new Date(now))
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(storedFromRow);
  }

  /**
   * Replaces a row's sealed payload if it is still sealed under `previousKeyId`
   * (compare-and-set: two replicas rotating at once re-seal a row once). False
   * when the row changed or vanished meanwhile.
   */
  async replaceSealed(id: string, previousKeyId: string, sealed: SealedPayload): Promise<boolean> {
    const result = await this.db
      .updateTable('handles')
      .set({
        key_id: sealed.keyId,
        iv: sealed.iv,
        ciphertext: sealed.ciphertext,
        auth_tag: sealed.authTag,
      })
      .where('id', '=', id)
      .where('key_id', '=', previousKeyId)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Distinct key ids of rows still live at `now` (the boot check against the keyring). */
  async liveKeyIds(now: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('handles')
      .select('key_id')
      .distinct()
      .where('expires_at', '>', new Date(now))
      .execute();
    return rows.map((r) => r.key_id).sort();
  }
}

function recordFromRow(row: HandleRow): HandleRecord {
  return {
    id: row.id,
    ownerPrincipalId: row.owner_principal_id,
    producingCapability: row.producing_capability,
    labels: { ...row.labels },
    createdAt: row.created_at.getTime(),
    expiresAt: row.expires_at.getTime(),
    sizeBytes: row.size_bytes,
  };
}

function storedFromRow(row: HandleRow): StoredHandle {
  return {
    record: recordFromRow(row),
    sealed: {
      keyId: row.key_id,
      iv: toBuffer(row.iv),
      ciphertext: toBuffer(row.ciphertext),
      authTag: toBuffer(row.auth_tag),
    },
  };
}
