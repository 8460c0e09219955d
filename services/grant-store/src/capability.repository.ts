import { Inject, Injectable } from '@nestjs/common';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Capability, ResourceArgument } from '@hcp/core';
import { toNumber, type CapabilityRow, type GrantStoreDb } from './database';
import { GRANT_STORE_DB } from './grant-store.tokens';

/** The manifest, or one provider's part of it, and the manifest revision it reflects. */
export interface ManifestSnapshot {
  readonly capabilities: Capability[];
  /** 0 when the manifest was never written. */
  readonly revision: number;
}

/** I/O for the capability manifest; no rules (CapabilityService owns them). */
@Injectable()
export class CapabilityRepository {
  constructor(@Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>) {}

  /** Creates or replaces the capability keyed by its id. */
  async upsert(
    tx: Transaction<GrantStoreDb>,
    capability: Capability,
    revision: number,
    at: number,
  ): Promise<Capability> {
    const values = {
      provider: capability.provider,
      tool: capability.tool,
      effects: JSON.stringify(capability.effects),
      risk: capability.risk,
      approval_required: capability.approvalRequired,
      required_scopes: JSON.stringify(capability.requiredScopes),
      resource_arguments: JSON.stringify(
        capability.resourceArguments.map(resourceArgumentFromJson),
      ),
      definition_digest: capability.definitionDigest ?? null,
      revision,
      updated_at: new Date(at),
    };
    const row = await tx
      .insertInto('capabilities')
      .values({ id: capability.id, ...values })
      .onConflict((oc) => oc.column('id').doUpdateSet(values))
      .returningAll()
      .executeTakeFirstOrThrow();
    return capabilityFromRow(row);
  }

  async findById(id: string, db: Kysely<GrantStoreDb> = this.db): Promise<Capability | undefined> {
    const row = await db
      .selectFrom('capabilities')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : capabilityFromRow(row);
  }

  /** Which of `ids` are in the manifest. */
  async existingIds(
    ids: readonly string[],
    db: Kysely<GrantStoreDb> = this.db,
  ): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await db
      .selectFrom('capabilities')
      .select('id')
      .where('id', 'in', [...ids])
      .execute();
    return new Set(rows.map((r) => r.id));
  }

  /** Which of `providers` have at least one capability in the manifest. */
  async providersPresent(
    providers: readonly string[],
    db: Kysely<GrantStoreDb> = this.db,
  ): Promise<Set<string>> {
    if (providers.length === 0) return new Set();
    const rows = await db
      .selectFrom('capabilities')
      .select('provider')
      .distinct()
      .where('provider', 'in', [...providers])
      .execute();
    return new Set(rows.map((r) => r.provider));
  }

  /**
   * The manifest (optionally one provider's part) and its revision in ONE
   * statement, so the revision always matches the list (one snapshot).
   */
  async snapshot(provider: string, db: Kysely<GrantStoreDb> = this.db): Promise<ManifestSnapshot> {
    const filter = provider === '' ? sql`true` : sql`c.provider = ${provider}`;
    const { rows } = await sql<NullableCapabilityRow & { manifest_revision: Int8Value }>`
      select m.revision as manifest_revision, c.*
      from manifest_revision m
      left join capabilities c on ${filter}
      where m.id = 1
      order by c.id`.execute(db);
    const first = rows[0];
    return {
      revision: first === undefined ? 0 : toNumber(first.manifest_revision),
      capabilities: rows
        .filter((r): r is CapabilityRow & typeof r => r.id !== null)
        .map(capabilityFromRow),
    };
  }
}

type Int8Value = string | number | bigint;
type NullableCapabilityRow = { [K in keyof CapabilityRow]: CapabilityRow[K] | null };

/** Maps a stored row to the domain capability. */
export function capabilityFromRow(row: CapabilityRow): Capability {
  return {
    id: row.id,
    provider: row.provider,
    tool: row.tool,
    effects: row.effects,
    risk: row.risk,
    approvalRequired: row.approval_required,
    requiredScopes: row.required_scopes,
    resourceArguments: row.resource_arguments.map(resourceArgumentFromJson),
    ...(row.definition_digest !== null && { definitionDigest: row.definition_digest }),
  };
}

// Rebuilt field by field (on write and on read) so no extra key is stored or smuggled back.
function resourceArgumentFromJson(a: ResourceArgument): ResourceArgument {
  return {
    name: a.name,
    canonicalizer: a.canonicalizer,
    role: a.role,
    ...(a.scopes !== undefined && a.scopes.length > 0 && { scopes: [...a.scopes] }),
    ...(a.many === true && { many: true }),
  };
}
