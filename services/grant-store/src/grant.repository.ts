import { Inject, Injectable } from '@nestjs/common';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { ArgumentConstraint, Grant, ResourcePattern } from '@hcp/core';
import { toNumber, type GrantRow, type GrantStoreDb } from './database';
import { GRANT_STORE_DB } from './grant-store.tokens';

/** A page query over one principal's grants, in id (= creation) order. */
export interface GrantPageQuery {
  readonly principalId: string;
  /** False: only grants neither revoked nor expired at `now`. */
  readonly includeInactive: boolean;
  readonly now: number;
  /** Return ids strictly after this one (the cursor). */
  readonly afterId?: string;
  readonly limit: number;
}

/** A principal's live grants and the revision they reflect, read in one snapshot. */
export interface PrincipalGrantSnapshot {
  readonly grants: Grant[];
  /** 0 when the principal never had a write. */
  readonly revision: number;
}

/** I/O for the grants table; no rules (GrantService owns them). Writes need a transaction. */
@Injectable()
export class GrantRepository {
  constructor(@Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>) {}

  async insert(tx: Transaction<GrantStoreDb>, grant: Grant & { revision: number }): Promise<void> {
    await tx
      .insertInto('grants')
      .values({
        id: grant.id,
        principal_id: grant.principalId,
        capabilities: JSON.stringify(grant.capabilities),
        resource_patterns: JSON.stringify(grant.resourcePatterns),
        scopes: JSON.stringify(grant.scopes),
        created_at: new Date(grant.createdAt),
        expires_at: grant.expiresAt === undefined ? null : new Date(grant.expiresAt),
        revoked_at: null,
        revoke_reason: null,
        revision: grant.revision,
        argument_constraints: JSON.stringify(grant.argumentConstraints ?? []),
      })
      .execute();
  }

  async findById(id: string, db: Kysely<GrantStoreDb> = this.db): Promise<Grant | undefined> {
    const row = await db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : grantFromRow(row);
  }

  /** Reads a grant and locks it until the transaction ends, so two revokes serialise. */
  async findForUpdate(tx: Transaction<GrantStoreDb>, id: string): Promise<Grant | undefined> {
    const row = await tx
      .selectFrom('grants')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    return row === undefined ? undefined : grantFromRow(row);
  }

  async markRevoked(
    tx: Transaction<GrantStoreDb>,
    id: string,
    at: number,
    reason: string,
    revision: number,
  ): Promise<Grant | undefined> {
    const row = await tx
      .updateTable('grants')
      .set({ revoked_at: new Date(at), revoke_reason: reason === '' ? null : reason, revision })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : grantFromRow(row);
  }

  async listByPrincipal(q: GrantPageQuery, db: Kysely<GrantStoreDb> = this.db): Promise<Grant[]> {
    let query = db
      .selectFrom('grants')
      .selectAll()
      .where('principal_id', '=', q.principalId)
      .orderBy('id')
      .limit(q.limit);
    if (q.afterId !== undefined) query = query.where('id', '>', q.afterId);
    if (!q.includeInactive) {
      const now = new Date(q.now);
      query = query
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
    }
    return (await query.execute()).map(grantFromRow);
  }

  /**
   * The principal's live grants and revision in ONE statement: a single
   * statement reads one snapshot even under READ COMMITTED, so the revision
   * always matches the grants returned, at the cost of one round trip (no
   * BEGIN/COMMIT). The anchor row makes a principal with no grants still
   * return its revision.
   */
  async liveSnapshot(
    principalId: string,
    now: number,
    db: Kysely<GrantStoreDb> = this.db,
  ): Promise<PrincipalGrantSnapshot> {
    const at = new Date(now);
    const { rows } = await sql<NullableGrantRow & { principal_revision: Int8Value | null }>`
      select r.revision as principal_revision, g.*
      from (select 1) as anchor
      left join principal_revisions r on r.principal_id = ${principalId}
      left join grants g
        on g.principal_id = ${principalId}
        and g.revoked_at is null
        and (g.expires_at is null or g.expires_at > ${at})
      order by g.id`.execute(db);
    const first = rows[0];
    const revision = first?.principal_revision == null ? 0 : toNumber(first.principal_revision);
    const grants = rows.filter((r): r is GrantRow & typeof r => r.id !== null).map(grantFromRow);
    return { grants, revision };
  }
}

type Int8Value = string | number | bigint;
type NullableGrantRow = { [K in keyof GrantRow]: GrantRow[K] | null };

/** Maps a stored row to the domain grant (epoch millis, no nulls). */
export function grantFromRow(row: GrantRow): Grant {
  // Rows written before the column existed read as [] (the migration's default).
  const constraints = (row.argument_constraints ?? []).map(constraintFromJson);
  return {
    id: row.id,
    principalId: row.principal_id,
    capabilities: row.capabilities,
    resourcePatterns: row.resource_patterns.map(patternFromJson),
    scopes: row.scopes,
    createdAt: toMillis(row.created_at),
    ...(row.expires_at !== null && { expiresAt: toMillis(row.expires_at) }),
    ...(row.revoked_at !== null && { revokedAt: toMillis(row.revoked_at) }),
    revision: toNumber(row.revision),
    ...(constraints.length > 0 && { argumentConstraints: constraints }),
  };
}

// Rebuilt field by field so a row can never smuggle extra keys into the domain object.
function patternFromJson(p: ResourcePattern): ResourcePattern {
  switch (p.kind) {
    case 'path_prefix':
      return { kind: 'path_prefix', prefix: p.prefix };
    case 'host_set':
      // Rows written before schemes and ports existed have neither: the defaults apply.
      return {
        kind: 'host_set',
        hosts: [...p.hosts],
        cidrs: [...p.cidrs],
        ...(p.schemes !== undefined && p.schemes.length > 0 && { schemes: [...p.schemes] }),
        ...(p.ports !== undefined && p.ports.length > 0 && { ports: [...p.ports] }),
      };
    case 'exact_id':
      return { kind: 'exact_id', id: p.id };
  }
}

// Rebuilt field by field like patterns. An unknown rule cannot be dropped (that would widen the
// grant), so it becomes an empty one_of, which no call satisfies.
function constraintFromJson(c: ArgumentConstraint): ArgumentConstraint {
  const argument = c.argument;
  switch (c.kind) {
    case 'one_of':
      return { argument, kind: 'one_of', values: [...c.values] };
    case 'pattern':
      return { argument, kind: 'pattern', pattern: c.pattern };
    case 'max_length':
      return { argument, kind: 'max_length', maxLength: c.maxLength };
    case 'range':
      return {
        argument,
        kind: 'range',
        ...(typeof c.min === 'number' && { min: c.min }),
        ...(typeof c.max === 'number' && { max: c.max }),
      };
    case 'absent':
      return { argument, kind: 'absent' };
    default:
      return { argument, kind: 'one_of', values: [] };
  }
}

/** A timestamptz as epoch millis; raw SQL through `pg` may hand back a string. */
export function toMillis(value: Date | string): number {
  return value instanceof Date ? value.getTime() : new Date(value).getTime();
}
