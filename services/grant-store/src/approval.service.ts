import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Kysely } from 'kysely';
import { newId, type Approval } from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import { ApprovalRepository, type ApprovalRecord } from './approval.repository';
import { CapabilityRepository } from './capability.repository';
import type { GrantStoreDb } from './database';
import { FailedPreconditionError, NotFoundError } from './errors';
import {
  GRANT_STORE_APPROVAL_LIFETIMES,
  GRANT_STORE_CLOCK,
  GRANT_STORE_DB,
  type ApprovalLifetimes,
  type Clock,
} from './grant-store.tokens';
import {
  LIMITS,
  optionalFreeText,
  parseCapabilityRef,
  requireBindingDigest,
  requireText,
} from './grant-store.validation';
import { GrantsChangedPublisher } from './grants-changed.publisher';
import { decodeApprovalPageToken, encodeApprovalPageToken } from './page-token';
import { RevisionRepository } from './revision.repository';

/** How long an approval stays usable when the request names no TTL (HCP_APPROVAL_DEFAULT_TTL_MS). */
export const DEFAULT_APPROVAL_TTL_MS = 15 * 60_000;
/** The longest an approval may stay usable; longer requests are capped (HCP_APPROVAL_MAX_TTL_MS). */
export const MAX_APPROVAL_TTL_MS = 24 * 3_600_000;
/** The approval lifetimes when none are configured. */
export const DEFAULT_APPROVAL_LIFETIMES: ApprovalLifetimes = {
  defaultTtlMs: DEFAULT_APPROVAL_TTL_MS,
  maxTtlMs: MAX_APPROVAL_TTL_MS,
};

/** Pending approvals one principal may have waiting at once; beyond it requests are refused. */
export const MAX_PENDING_APPROVALS_PER_PRINCIPAL = 256;

/** What RequestApproval asks for. */
export interface RequestApprovalInput {
  readonly principalId: string;
  readonly capabilityId: string;
  /** `approvalBindingDigest(...)` of the exact call, computed by the caller. */
  readonly bindingDigest: string;
  /** Undefined: the configured default (DEFAULT_APPROVAL_TTL_MS unless set). */
  readonly ttlMs?: number;
  readonly summary: string;
}

/** ListApprovals page size when the caller sends 0 (the proto's documented default). */
export const DEFAULT_APPROVAL_PAGE_SIZE = 50;
/** ListApprovals page size cap (the proto's documented maximum). */
export const MAX_APPROVAL_PAGE_SIZE = 200;

/** What ListApprovals asks for. */
export interface ListApprovalsInput {
  /** Empty: every principal. */
  readonly principalId: string;
  /** 0: DEFAULT_APPROVAL_PAGE_SIZE. */
  readonly pageSize: number;
  /** Empty: the first page. */
  readonly pageToken: string;
}

/** One page of waiting approvals; an empty token means this was the last page. */
export interface ApprovalPage {
  readonly approvals: ApprovalRecord[];
  readonly nextPageToken: string;
}

/** An operator's verdict. */
export type ApprovalVerdict = 'approve' | 'deny';

/**
 * The approval lifecycle: pending -> approved | denied by an operator, an
 * approved one consumed once before it expires. Every write bumps the
 * approval principal's revision and publishes the change after commit.
 */
@Injectable()
export class ApprovalService {
  constructor(
    @Inject(GRANT_STORE_DB) private readonly db: Kysely<GrantStoreDb>,
    @Inject(ApprovalRepository) private readonly approvals: ApprovalRepository,
    @Inject(CapabilityRepository) private readonly capabilities: CapabilityRepository,
    @Inject(RevisionRepository) private readonly revisions: RevisionRepository,
    @Inject(GrantsChangedPublisher) private readonly publisher: GrantsChangedPublisher,
    @Inject(GRANT_STORE_CLOCK) private readonly clock: Clock,
    @Optional()
    @Inject(GRANT_STORE_APPROVAL_LIFETIMES)
    private readonly lifetimes: ApprovalLifetimes = DEFAULT_APPROVAL_LIFETIMES,
  ) {}

  async request(input: RequestApprovalInput): Promise<Approval> {
    requireText('principalId', input.principalId, LIMITS.principalIdLength);
    requireText('capabilityId', input.capabilityId, LIMITS.capabilityIdLength);
    const ref = parseCapabilityRef(input.capabilityId);
    if (ref === undefined || ref.tool === '*')
      throw invalidArgument('capabilityId', 'must be provider/tool (no wildcard)');
    requireBindingDigest('bindingDigest', input.bindingDigest);
    if (input.ttlMs !== undefined && (!Number.isFinite(input.ttlMs) || input.ttlMs <= 0))
      throw invalidArgument('ttl', 'must be positive');
    optionalFreeText('summary', input.summary, LIMITS.summaryLength);
    const ttlMs = Math.min(input.ttlMs ?? this.lifetimes.defaultTtlMs, this.lifetimes.maxTtlMs);
    const now = this.clock();
    const { approval, revision } = await this.db.transaction().execute(async (tx) => {
      if ((await this.capabilities.findById(input.capabilityId, tx)) === undefined)
        throw invalidArgument('capabilityId', `unknown capability ${input.capabilityId}`);
      // The bump also locks the principal's revision row, so the checks below and the insert
      // are serialised per principal.
      const revision = await this.revisions.bumpPrincipal(tx, input.principalId);
      // The same call asked again (a retry, a `confirm: true` loop) gets the request that waits
      // already, so an agent cannot bury the operator's queue under copies of one call.
      const waiting = await this.approvals.findPending(
        tx,
        input.principalId,
        input.bindingDigest,
        now,
      );
      if (waiting !== undefined) return { approval: waiting, revision };
      if (
        (await this.approvals.countPending(tx, input.principalId, now)) >=
        MAX_PENDING_APPROVALS_PER_PRINCIPAL
      ) {
        throw invalidArgument(
          'principalId',
          `more than ${MAX_PENDING_APPROVALS_PER_PRINCIPAL} approvals of this principal are waiting; decide or let them expire first`,
        );
      }
      const approval = await this.approvals.insert(tx, {
        id: newId('apr'),
        principalId: input.principalId,
        capabilityId: input.capabilityId,
        bindingDigest: input.bindingDigest,
        summary: input.summary,
        createdAt: now,
        expiresAt: now + ttlMs,
      });
      return { approval, revision };
    });
    await this.published(approval, revision, now);
    return approval;
  }

  /** Approves or denies a pending approval; `operatorId` comes from the caller's credential. */
  async decide(
    approvalId: string,
    verdict: ApprovalVerdict,
    operatorId: string,
  ): Promise<Approval> {
    requireText('approvalId', approvalId, LIMITS.idLength);
    requireText('operator', operatorId, LIMITS.principalIdLength);
    const now = this.clock();
    const { approval, revision } = await this.db.transaction().execute(async (tx) => {
      const current = await this.approvals.findById(approvalId, tx);
      if (current === undefined) throw new NotFoundError('approval', approvalId);
      // I2 means a human other than the caller vouches for the call; self-approval would void it.
      if (current.principalId === operatorId)
        throw new FailedPreconditionError(
          `approval ${approvalId}: a principal cannot decide its own approval`,
        );
      if (current.state !== 'pending')
        throw new FailedPreconditionError(`approval ${approvalId} is already ${current.state}`);
      if (current.expiresAt <= now)
        throw new FailedPreconditionError(`approval ${approvalId} has expired`, 'APPROVAL_EXPIRED');
      const decided = await this.approvals.decide(
        tx,
        approvalId,
        verdict === 'approve' ? 'approved' : 'denied',
        operatorId,
        now,
      );
      // A concurrent decision won the race between the read and the conditional update.
      if (decided === undefined)
        throw new FailedPreconditionError(`approval ${approvalId} is no longer pending`);
      const revision = await this.revisions.bumpPrincipal(tx, current.principalId);
      return { approval: decided, revision };
    });
    await this.published(approval, revision, now);
    return approval;
  }

  /**
   * Uses an approved approval once. The conditional UPDATE is the whole
   * decision; only when it matched nothing is the row read to name the reason.
   */
  async consume(approvalId: string, principalId: string, bindingDigest: string): Promise<Approval> {
    requireText('approvalId', approvalId, LIMITS.idLength);
    requireText('principalId', principalId, LIMITS.principalIdLength);
    requireBindingDigest('bindingDigest', bindingDigest);
    const now = this.clock();
    const { approval, revision } = await this.db.transaction().execute(async (tx) => {
      const consumed = await this.approvals.consume(
        tx,
        approvalId,
        principalId,
        bindingDigest,
        now,
      );
      if (consumed === undefined) {
        const current = await this.approvals.findById(approvalId, tx);
        throw current === undefined
          ? new NotFoundError('approval', approvalId)
          : whyUnusable(current, principalId, bindingDigest, now);
      }
      const revision = await this.revisions.bumpPrincipal(tx, consumed.principalId);
      return { approval: consumed, revision };
    });
    await this.published(approval, revision, now);
    return approval;
  }

  async get(approvalId: string): Promise<Approval> {
    requireText('approvalId', approvalId, LIMITS.idLength);
    const approval = await this.approvals.findById(approvalId);
    if (approval === undefined) throw new NotFoundError('approval', approvalId);
    return approval;
  }

  /** One approval with its summary and request time, for an operator about to decide it. */
  async getRecord(approvalId: string): Promise<ApprovalRecord> {
    requireText('approvalId', approvalId, LIMITS.idLength);
    const record = await this.approvals.findRecordById(approvalId);
    if (record === undefined) throw new NotFoundError('approval', approvalId);
    return record;
  }

  /** What waits for an operator: pending and unexpired, oldest first, bounded pages. */
  async listPending(input: ListApprovalsInput): Promise<ApprovalPage> {
    if (input.principalId !== '')
      requireText('principalId', input.principalId, LIMITS.principalIdLength);
    if (!Number.isInteger(input.pageSize) || input.pageSize < 0)
      throw invalidArgument('pageSize', 'must be 0 (default) or a positive integer');
    const pageSize =
      input.pageSize === 0
        ? DEFAULT_APPROVAL_PAGE_SIZE
        : Math.min(input.pageSize, MAX_APPROVAL_PAGE_SIZE);
    const cursor =
      input.pageToken === ''
        ? undefined
        : decodeApprovalPageToken(input.pageToken, { principalId: input.principalId });
    const rows = await this.approvals.listPending({
      ...(input.principalId !== '' && { principalId: input.principalId }),
      ...(cursor !== undefined && { afterId: cursor.afterId }),
      now: this.clock(),
      limit: pageSize + 1,
    });
    const page = rows.slice(0, pageSize);
    const last = page[page.length - 1];
    const nextPageToken =
      rows.length > pageSize && last !== undefined
        ? encodeApprovalPageToken({ principalId: input.principalId, afterId: last.approval.id })
        : '';
    return { approvals: page, nextPageToken };
  }

  private published(approval: Approval, revision: number, now: number): Promise<void> {
    return this.publisher.publish({
      kind: 'approval',
      principalId: approval.principalId,
      revision,
      changedAt: now,
    });
  }
}

/**
 * Why an existing approval could not be consumed. Binding first, so an
 * approval stolen by id tells its thief nothing about its state.
 */
function whyUnusable(
  a: Approval,
  principalId: string,
  bindingDigest: string,
  now: number,
): FailedPreconditionError {
  if (a.principalId !== principalId || a.bindingDigest !== bindingDigest)
    return new FailedPreconditionError(
      `approval ${a.id} is bound to another call`,
      'APPROVAL_MISMATCH',
    );
  if (a.consumedAt !== undefined)
    return new FailedPreconditionError(`approval ${a.id} was already used`, 'APPROVAL_CONSUMED');
  if (a.state !== 'approved')
    return new FailedPreconditionError(`approval ${a.id} is ${a.state}`, 'APPROVAL_REQUIRED');
  if (a.expiresAt <= now)
    return new FailedPreconditionError(`approval ${a.id} has expired`, 'APPROVAL_EXPIRED');
  // Every condition of the UPDATE holds now, so a concurrent writer changed the row in between.
  return new FailedPreconditionError(`approval ${a.id} changed concurrently`, 'APPROVAL_CONSUMED');
}
