import { Inject, Injectable } from '@nestjs/common';
import type { Kysely, Transaction } from 'kysely';
import type { Approval } from '@hcp/core';
import type { ApprovalRow, GrantStoreDb } from './database';
import { toMillis } from './grant.repository';
import { GRANT_STORE_DB } from './grant-store.tokens';

/** A new approval request as stored. */
export interface NewApproval {
  readonly id: string;
  readonly principalId: string;
  readonly capabilityId: string;
  readonly bindingDigest: string;
  readonly summary: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** I/O for approvals; no rules (ApprovalService owns them). */
@Injectable()
export class ApprovalRepository {
  constructor(@Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>) {}

  async insert(tx: Transaction<GrantStoreDb>, a: NewApproval): Promise<Approval> {
    const row = await tx
      .insertInto('approvals')
      .values({
        id: a.id,
        principal_id: a.principalId,
        capability_id: a.capabilityId,
        binding_digest: a.bindingDigest,
        summary: a.summary,
        state: 'pending',
        created_at: new Date(a.createdAt),
        expires_at: new Date(a.expiresAt),
        decided_at: null,
        decided_by: null,
        consumed_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return approvalFromRow(row);
  }

  async findById(id: string, db: Kysely<GrantStoreDb> = this.db): Promise<Approval | undefined> {
    const row = await db
      .selectFrom('approvals')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : approvalFromRow(row);
  }

  /** Moves a pending, unexpired approval to its verdict; undefined when the row was not in that state. */
  async decide(
    tx: Transaction<GrantStoreDb>,
    id: string,
    state: 'approved' | 'denied',
    decidedBy: string,
    now: number,
  ): Promise<Approval | undefined> {
    const at = new Date(now);
    const row = await tx
      .updateTable('approvals')
      .set({ state, decided_by: decidedBy, decided_at: at })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where('expires_at', '>', at)
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : approvalFromRow(row);
  }

  /**
   * Single use, atomically: one UPDATE whose WHERE holds every condition, so of
   * two concurrent consumers exactly one sees its row (PostgreSQL re-checks the
   * WHERE after the first commits; PGlite serialises). Undefined when any
   * condition failed; the caller reads the row to say which.
   */
  async consume(
    tx: Transaction<GrantStoreDb>,
    id: string,
    principalId: string,
    bindingDigest: string,
    now: number,
  ): Promise<Approval | undefined> {
    const at = new Date(now);
    const row = await tx
      .updateTable('approvals')
      .set({ consumed_at: at })
      .where('id', '=', id)
      .where('principal_id', '=', principalId)
      .where('binding_digest', '=', bindingDigest)
      .where('state', '=', 'approved')
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', at)
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : approvalFromRow(row);
  }
}

/** Maps a stored row to the domain approval. */
export function approvalFromRow(row: ApprovalRow): Approval {
  return {
    id: row.id,
    principalId: row.principal_id,
    capabilityId: row.capability_id,
    bindingDigest: row.binding_digest,
    state: row.state,
    expiresAt: toMillis(row.expires_at),
    ...(row.consumed_at !== null && { consumedAt: toMillis(row.consumed_at) }),
    ...(row.decided_by !== null && { decidedBy: row.decided_by }),
  };
}
