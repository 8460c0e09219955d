import { Inject, Injectable } from '@nestjs/common';
import { newId, type AuditEntry } from '@hcp/core';
import {
  createLogger,
  GRANTS_CHANGED_SUBJECT,
  type AuditPublisher,
  type EventBus,
} from '@hcp/platform';
import { grants } from '@hcp/proto';
import { GRANT_STORE_AUDIT, GRANT_STORE_BUS } from './grant-store.tokens';

export { GRANTS_CHANGED_SUBJECT };

/** A committed write, as the change event reports it. */
export interface GrantsChange {
  /** What changed; `approval` travels as GRANT_CHANGE_KIND_UNSPECIFIED (the proto has no approval kind). */
  readonly kind: 'created' | 'revoked' | 'approval' | 'capability_put';
  /** Empty for a manifest change. */
  readonly principalId: string;
  /** The principal's revision after the write, or the manifest revision for a manifest change. */
  readonly revision: number;
  readonly grantId?: string;
  readonly capabilityId?: string;
  /** Epoch millis of the write. */
  readonly changedAt: number;
}

const KIND: Record<GrantsChange['kind'], grants.GrantChangeKind> = {
  created: grants.GrantChangeKind.GRANT_CHANGE_KIND_CREATED,
  revoked: grants.GrantChangeKind.GRANT_CHANGE_KIND_REVOKED,
  // UNSPECIFIED tells a subscriber to drop the principal's cache: conservative and correct.
  approval: grants.GrantChangeKind.GRANT_CHANGE_KIND_UNSPECIFIED,
  capability_put: grants.GrantChangeKind.GRANT_CHANGE_KIND_CAPABILITY_PUT,
};

/** Encodes a committed write as a binary GrantsChangedEvent. */
export function encodeGrantsChanged(change: GrantsChange): Uint8Array {
  return grants.GrantsChangedEvent.encode({
    principalId: change.principalId,
    revision: change.revision,
    grantId: change.grantId ?? '',
    kind: KIND[change.kind],
    capabilityId: change.capabilityId ?? '',
    changedAt: {
      seconds: Math.floor(change.changedAt / 1000),
      nanos: (change.changedAt % 1000) * 1_000_000,
    },
  }).finish();
}

/**
 * Publishes `hcp.grants.changed` after a write committed. It never throws: the
 * write already happened, and failing the RPC would make the caller retry a
 * write that succeeded. A lost event is covered by policy-decision's staleness
 * bound (cache entries expire by age and the PDP fails closed past it), and the
 * bus is at-most-once anyway, so the error is logged and the call succeeds.
 */
@Injectable()
export class GrantsChangedPublisher {
  private readonly log = createLogger('GrantsChangedPublisher');

  constructor(
    @Inject(GRANT_STORE_BUS) private readonly bus: EventBus,
    @Inject(GRANT_STORE_AUDIT) private readonly audit: AuditPublisher | null,
  ) {}

  async publish(change: GrantsChange): Promise<void> {
    this.recordAudit(change);
    try {
      await this.bus.publish(GRANTS_CHANGED_SUBJECT, encodeGrantsChanged(change));
    } catch (err: unknown) {
      this.log.error(
        { err, kind: change.kind, principalId: change.principalId, revision: change.revision },
        'hcp.grants.changed publish failed after commit; subscribers rely on their staleness bound',
      );
    }
  }

  /**
   * Grant and approval changes are audit entries too (I7). The write already committed, so a
   * full audit buffer cannot undo it: the refusal is logged loudly with the change it concerns.
   */
  private recordAudit(change: GrantsChange): void {
    if (this.audit === null) return;
    const entry: AuditEntry = {
      id: newId('aud'),
      time: change.changedAt,
      decisionId: '',
      endpointFamily: change.kind === 'approval' ? 'approval' : 'grant',
      outcome: 'allow',
      reason: 'ALLOWED',
      check: `grant-store.${change.kind}`,
      handleIds: [],
      ...(change.principalId !== '' ? { principalId: change.principalId } : {}),
      ...(change.capabilityId !== undefined ? { capabilityId: change.capabilityId } : {}),
      ...(change.grantId !== undefined ? { matchedGrantId: change.grantId } : {}),
    };
    try {
      this.audit.record(entry);
    } catch (err: unknown) {
      this.log.error({ err, change }, 'audit refused a grant-store change entry');
    }
  }
}
