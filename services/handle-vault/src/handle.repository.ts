import { Inject, Injectable } from '@nestjs/common';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { HandleRecord } from '@hcp/core';
import { toBuffer, toNumber, type HandleRow, type VaultDb } from './database';
import { VAULT_DB } from './handle-vault.tokens';
import type { SealedPayload } from './payload-cipher';

/** A handle as stored: its metadata and its sealed payload. */
export interface StoredHandle {
  readonly record: HandleRecord;
  readonly sealed: SealedPayload;
}

/** I/O for the handles table; no rules (HandleService owns them). */
@Injectable()
export class HandleRepository {
  constructor(@Inject(VAULT_DB) private readonly db: Kysely<VaultDb>) {}

  /**
   * Serialises Puts of one principal until the transaction ends, so two
   * concurrent Puts cannot both pass the quota check. A transaction-scoped
   * advisory lock: nothing to clean up, and a hash collision only serialises
   * two principals' Puts.
   */
  async lockPrincipal(tx: Transaction<VaultDb>, principalId: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`hcp.vault:${principalId}`}, 0))`.execute(
      tx,
    );
  }

  /** Sum of payload sizes of the principal's handles still live at `now`. */
  async liveBytes(tx: Transaction<VaultDb>, principalId: string, now: number): Promise<number> {
    const row = await tx
      .selectFrom('handles')
      .select((eb) => eb.fn.sum<string | number | null>('size_bytes').as('total'))
      .where('owner_principal_id', '=', principalId)
      .where('expires_at', '>', new Date(now))
      .executeTakeFirst();
    return toNumber(row?.total ?? null);
  }

  async insert(tx: Transaction<VaultDb>, handle: StoredHandle): Promise<void> {
    const { record, sealed } = handle;
    await tx
      .insertInto('handles')
      .values({
        id: record.id,
        owner_principal_id: record.ownerPrincipalId,
        producing_capability: record.producingCapability,
        labels: JSON.stringify(record.labels),
        created_at: new Date(record.createdAt),
        expires_at: new Date(record.expiresAt),
        size_bytes: record.sizeBytes,
        key_id: sealed.keyId,
        iv: sealed.iv,
        ciphertext: sealed.ciphertext,
        auth_tag: sealed.authTag,
      })
      .execute();
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
