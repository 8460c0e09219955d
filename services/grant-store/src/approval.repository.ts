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

/** An approval with what an operator needs to decide it; the domain Approval leaves these out. */
export interface ApprovalRecord {
  readonly approval: Approval;
  readonly summary: string;
  readonly createdAt: number;
}

/** One keyset page of waiting approvals. */
export interface PendingApprovalQuery {
  /** Undefined: every principal. */
  readonly principalId?: string;
  readonly afterId?: string;
  readonly now: number;
  readonly limit: number;
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

  async findRecordById(id: string): Promise<ApprovalRecord | undefined> {
    const row = await this.db
      .selectFrom('approvals')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : approvalRecordFromRow(row);
  }

  /**
   * Pending, unexpired approvals in id order (ids are UUIDv7, so request order), served by
   * the partial index approvals_pending_id_idx.
   */
  async listPending(q: PendingApprovalQuery): Promise<ApprovalRecord[]> {
    let query = this.db
      .selectFrom('approvals')
      .selectAll()
      .where('state', '=', 'pending')
      .where('expires_at', '>', new Date(q.now))
      .orderBy('id')
      .limit(q.limit);
    if (q.principalId !== undefined) query = query.where('principal_id', '=', q.principalId);
    if (q.afterId !== undefined) query = query.where('id', '>', q.afterId);
    return (await query.execute()).map(approvalRecordFromRow);
  }

  /** The principal's pending, unexpired approval for this exact call, if one is waiting already. */
  async findPending(
    tx: Transaction<GrantStoreDb>,
    principalId: string,
    bindingDigest: string,
    now: number,
  ): Promise<Approval | undefined> {
    const row = await tx
      .selectFrom('approvals')
      .selectAll()
      .where('principal_id', '=', principalId)
      .where('binding_digest', '=', bindingDigest)
      .where('state', '=', 'pending')
      .where('expires_at', '>', new Date(now))
      .orderBy('id')
      .executeTakeFirst();
    return row === undefined ? undefined : approvalFromRow(row);
  }

  /** How many approvals of the principal wait for an operator now. */
  async countPending(
    tx: Transaction<GrantStoreDb>,
    principalId: string,
    now: number,
  ): Promise<number> {
    const row = await tx
      .selectFrom('approvals')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('principal_id', '=', principalId)
      .where('state', '=', 'pending')
      .where('expires_at', '>', new Date(now))
      .executeTakeFirstOrThrow();
    return Number(row.n);
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

/** Maps a stored row to the approval plus its summary and request time. */
export function approvalRecordFromRow(row: ApprovalRow): ApprovalRecord {
  return {
    approval: approvalFromRow(row),
    summary: row.summary,
    createdAt: toMillis(row.created_at),
  };
}
