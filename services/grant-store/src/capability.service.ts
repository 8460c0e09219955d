import { Inject, Injectable } from '@nestjs/common';
import type { Kysely } from 'kysely';
import type { Capability } from '@hcp/core';
import { CapabilityRepository, type ManifestSnapshot } from './capability.repository';
import type { GrantStoreDb } from './database';
import { NotFoundError } from './errors';
import { GRANT_STORE_CLOCK, GRANT_STORE_DB, type Clock } from './grant-store.tokens';
import { LIMITS, requireCapability, requireProvider, requireText } from './grant-store.validation';
import { GrantsChangedPublisher } from './grants-changed.publisher';
import { RevisionRepository } from './revision.repository';

/** The result of PutCapability: the stored capability and the manifest revision after the write. */
export interface PutCapabilityResult {
  readonly capability: Capability;
  readonly manifestRevision: number;
}

/** The manifest rules: a capability is validated whole, and every put bumps the manifest revision. */
@Injectable()
export class CapabilityService {
  constructor(
    @Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>,
    @Inject(CapabilityRepository) private readonly capabilities: CapabilityRepository,
    @Inject(RevisionRepository) private readonly revisions: RevisionRepository,
    @Inject(GrantsChangedPublisher) private readonly publisher: GrantsChangedPublisher,
    @Inject(GRANT_STORE_CLOCK) private readonly clock: Clock,
  ) {}

  async put(capability: Capability): Promise<PutCapabilityResult> {
    requireCapability('capability', capability);
    const now = this.clock();
    const result = await this.db.transaction().execute(async (tx) => {
      const manifestRevision = await this.revisions.bumpManifest(tx);
      const stored = await this.capabilities.upsert(tx, capability, manifestRevision, now);
      return { capability: stored, manifestRevision };
    });
    await this.publisher.publish({
      kind: 'capability_put',
      principalId: '',
      revision: result.manifestRevision,
      capabilityId: result.capability.id,
      changedAt: now,
    });
    return result;
  }

  async get(capabilityId: string): Promise<Capability> {
    requireText('capabilityId', capabilityId, LIMITS.capabilityIdLength);
    const capability = await this.capabilities.findById(capabilityId);
    if (capability === undefined) throw new NotFoundError('capability', capabilityId);
    return capability;
  }

  /** The whole manifest (or one provider's part) with the revision it reflects. */
  async list(provider: string): Promise<ManifestSnapshot> {
    if (provider !== '') requireProvider('provider', provider);
    return this.capabilities.snapshot(provider);
  }
}
