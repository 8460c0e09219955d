import { Inject, Injectable } from '@nestjs/common';
import type { Kysely } from 'kysely';
import { newId, type ArgumentConstraint, type Grant, type ResourcePattern } from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import { CapabilityRepository } from './capability.repository';
import type { GrantStoreDb } from './database';
import { NotFoundError } from './errors';
import { GrantRepository, type PrincipalGrantSnapshot } from './grant.repository';
import { GRANT_STORE_CLOCK, GRANT_STORE_DB, type Clock } from './grant-store.tokens';
import {
  LIMITS,
  optionalFreeText,
  parseCapabilityRef,
  requireArgumentConstraints,
  requireBoundedList,
  requireResourcePattern,
  requireScopes,
  requireText,
  requireUnique,
} from './grant-store.validation';
import { GrantsChangedPublisher } from './grants-changed.publisher';
import { decodePageToken, encodePageToken } from './page-token';
import { RevisionRepository } from './revision.repository';

/** What CreateGrant asks for; id, timestamps and revision are the store's. */
export interface CreateGrantInput {
  readonly principalId: string;
  readonly capabilities: readonly string[];
  readonly resourcePatterns: readonly ResourcePattern[];
  readonly scopes: readonly string[];
  /** Epoch millis; undefined: never expires. */
  readonly expiresAt?: number;
  /** Rules on call arguments; undefined or empty: unconstrained. */
  readonly argumentConstraints?: readonly ArgumentConstraint[];
}

/** What ListGrants asks for. */
export interface ListGrantsInput {
  readonly principalId: string;
  readonly includeInactive: boolean;
  /** 0: the default page size; above the maximum: capped. */
  readonly pageSize: number;
  /** Empty: the first page. */
  readonly pageToken: string;
}

/** One page of grants; an empty token means this was the last page. */
export interface GrantPage {
  readonly grants: Grant[];
  readonly nextPageToken: string;
}

/** ListGrants page size when the caller sends 0 (the proto's documented default). */
export const DEFAULT_PAGE_SIZE = 100;
/** ListGrants page size cap (the proto's documented maximum). */
export const MAX_PAGE_SIZE = 1000;

/** The grant rules: validation, one transaction per write with a revision bump, then the change event. */
@Injectable()
export class GrantService {
  constructor(
    @Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>,
    @Inject(GrantRepository) private readonly grants: GrantRepository,
    @Inject(CapabilityRepository) private readonly capabilities: CapabilityRepository,
    @Inject(RevisionRepository) private readonly revisions: RevisionRepository,
    @Inject(GrantsChangedPublisher) private readonly publisher: GrantsChangedPublisher,
    @Inject(GRANT_STORE_CLOCK) private readonly clock: Clock,
  ) {}

  async create(input: CreateGrantInput): Promise<Grant> {
    const now = this.clock();
    this.validateCreate(input, now);
    const grant = await this.db.transaction().execute(async (tx) => {
      // Checked inside the transaction so the manifest read and the insert are one unit of work.
      await this.requireKnownCapabilities(input.capabilities, tx);
      const revision = await this.revisions.bumpPrincipal(tx, input.principalId);
      const created: Grant & { revision: number } = {
        id: newId('grt'),
        principalId: input.principalId,
        capabilities: [...input.capabilities],
        resourcePatterns: [...input.resourcePatterns],
        scopes: [...input.scopes],
        createdAt: now,
        ...(input.expiresAt !== undefined && { expiresAt: input.expiresAt }),
        revision,
        ...(input.argumentConstraints !== undefined &&
          input.argumentConstraints.length > 0 && {
            argumentConstraints: [...input.argumentConstraints],
          }),
      };
      await this.grants.insert(tx, created);
      return created;
    });
    await this.publisher.publish({
      kind: 'created',
      principalId: grant.principalId,
      revision: grant.revision,
      grantId: grant.id,
      changedAt: now,
    });
    return grant;
  }

  /**
   * Revokes a grant. Revoking a revoked grant returns it unchanged (the
   * proto's contract): nothing is written, the revision does not move and no
   * event is published, so a retried revoke is harmless.
   */
  async revoke(grantId: string, reason: string): Promise<Grant> {
    requireText('grantId', grantId, LIMITS.idLength);
    optionalFreeText('reason', reason, LIMITS.reasonLength);
    const now = this.clock();
    const result = await this.db.transaction().execute(async (tx) => {
      const current = await this.grants.findForUpdate(tx, grantId);
      if (current === undefined) throw new NotFoundError('grant', grantId);
      if (current.revokedAt !== undefined) return { grant: current, changed: false };
      const revision = await this.revisions.bumpPrincipal(tx, current.principalId);
      const revoked = await this.grants.markRevoked(tx, grantId, now, reason, revision);
      // The row is locked above, so it cannot have been revoked in between.
      if (revoked === undefined) throw new Error(`grant ${grantId} changed under its row lock`);
      return { grant: revoked, changed: true };
    });
    if (result.changed)
      await this.publisher.publish({
        kind: 'revoked',
        principalId: result.grant.principalId,
        revision: result.grant.revision ?? 0,
        grantId: result.grant.id,
        changedAt: now,
      });
    return result.grant;
  }

  async get(grantId: string): Promise<Grant> {
    requireText('grantId', grantId, LIMITS.idLength);
    const grant = await this.grants.findById(grantId);
    if (grant === undefined) throw new NotFoundError('grant', grantId);
    return grant;
  }

  async list(input: ListGrantsInput): Promise<GrantPage> {
    requireText('principalId', input.principalId, LIMITS.principalIdLength);
    if (!Number.isInteger(input.pageSize) || input.pageSize < 0)
      throw invalidArgument('pageSize', 'must be 0 (default) or a positive integer');
    const pageSize =
      input.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(input.pageSize, MAX_PAGE_SIZE);
    const cursor =
      input.pageToken === ''
        ? undefined
        : decodePageToken(input.pageToken, {
            principalId: input.principalId,
            includeInactive: input.includeInactive,
          });
    const rows = await this.grants.listByPrincipal({
      principalId: input.principalId,
      includeInactive: input.includeInactive,
      now: this.clock(),
      ...(cursor !== undefined && { afterId: cursor.afterId }),
      limit: pageSize + 1,
    });
    const page = rows.slice(0, pageSize);
    const last = page[page.length - 1];
    const nextPageToken =
      rows.length > pageSize && last !== undefined
        ? encodePageToken({
            principalId: input.principalId,
            includeInactive: input.includeInactive,
            afterId: last.id,
          })
        : '';
    return { grants: page, nextPageToken };
  }

  /** What the decision cache loads on a miss: live grants and the matching revision, one snapshot. */
  async principalSnapshot(principalId: string): Promise<PrincipalGrantSnapshot> {
    requireText('principalId', principalId, LIMITS.principalIdLength);
    return this.grants.liveSnapshot(principalId, this.clock());
  }

  private validateCreate(input: CreateGrantInput, now: number): void {
    requireText('principalId', input.principalId, LIMITS.principalIdLength);
    if (input.capabilities.length === 0)
      throw invalidArgument('capabilities', 'must name at least one capability');
    requireBoundedList('capabilities', input.capabilities, LIMITS.capabilitiesPerGrant);
    input.capabilities.forEach((c, i) => {
      requireText(`capabilities[${i}]`, c, LIMITS.capabilityIdLength);
      if (parseCapabilityRef(c) === undefined)
        throw invalidArgument(`capabilities[${i}]`, `${c} is not provider/tool or provider/*`);
    });
    requireUnique('capabilities', input.capabilities);
    requireBoundedList('resourcePatterns', input.resourcePatterns, LIMITS.patternsPerGrant);
    input.resourcePatterns.forEach((p, i) => requireResourcePattern(`resourcePatterns[${i}]`, p));
    requireArgumentConstraints('argumentConstraints', input.argumentConstraints ?? []);
    requireScopes('scopes', input.scopes);
    if (input.expiresAt !== undefined && input.expiresAt <= now)
      throw invalidArgument('expiresAt', 'must be in the future');
  }

  /** Every entry must be a manifest capability, or `provider/*` for a provider with at least one. */
  private async requireKnownCapabilities(
    list: readonly string[],
    db: Kysely<GrantStoreDb>,
  ): Promise<void> {
    const refs = list.map((c) => ({ c, ref: parseCapabilityRef(c) }));
    const exact = refs.filter((r) => r.ref?.tool !== '*').map((r) => r.c);
    const providers = refs.flatMap((r) => (r.ref?.tool === '*' ? [r.ref.provider] : []));
    // One transaction is one connection: the two reads run one after the other.
    const known = await this.capabilities.existingIds(exact, db);
    const present = await this.capabilities.providersPresent(providers, db);
    refs.forEach(({ c, ref }, i) => {
      if (ref === undefined) {
        throw invalidArgument(`capabilities[${i}]`, `${c} is not provider/tool or provider/*`);
      } else if (ref.tool === '*') {
        if (!present.has(ref.provider))
          throw invalidArgument(
            `capabilities[${i}]`,
            `provider ${ref.provider} has no capabilities`,
          );
      } else if (!known.has(c)) {
        throw invalidArgument(`capabilities[${i}]`, `unknown capability ${c}`);
      }
    });
  }
}
