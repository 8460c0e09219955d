import { Inject, Injectable } from '@nestjs/common';
import { sql, type Kysely, type Transaction } from 'kysely';
import { toNumber, type GrantStoreDb } from './database';
import { GRANT_STORE_DB } from './grant-store.tokens';

/** I/O for the revision counters: one per principal, one for the manifest. */
@Injectable()
export class RevisionRepository {
  constructor(@Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>) {}

  /**
   * Increments the principal's revision and returns the new value. The upsert
   * takes the row lock, so concurrent writes for one principal get distinct,
   * increasing revisions in commit order.
   */
  async bumpPrincipal(tx: Transaction<GrantStoreDb>, principalId: string): Promise<number> {
    const row = await tx
      .insertInto('principal_revisions')
      .values({ principal_id: principalId, revision: 1 })
      .onConflict((oc) =>
        oc
          .column('principal_id')
          .doUpdateSet({ revision: sql<number>`principal_revisions.revision + 1` }),
      )
      .returning('revision')
      .executeTakeFirstOrThrow();
    return toNumber(row.revision);
  }

  /** Increments the manifest revision and returns the new value. */
  async bumpManifest(tx: Transaction<GrantStoreDb>): Promise<number> {
    const row = await tx
      .updateTable('manifest_revision')
      .set({ revision: sql<number>`revision + 1` })
      .where('id', '=', 1)
      .returning('revision')
      .executeTakeFirstOrThrow();
    return toNumber(row.revision);
  }

  async principalRevision(
    principalId: string,
    db: Kysely<GrantStoreDb> = this.db,
  ): Promise<number> {
    const row = await db
      .selectFrom('principal_revisions')
      .select('revision')
      .where('principal_id', '=', principalId)
      .executeTakeFirst();
    return row === undefined ? 0 : toNumber(row.revision);
  }

  async manifestRevision(db: Kysely<GrantStoreDb> = this.db): Promise<number> {
    const row = await db
      .selectFrom('manifest_revision')
      .select('revision')
      .where('id', '=', 1)
      .executeTakeFirst();
    return row === undefined ? 0 : toNumber(row.revision);
  }
}
