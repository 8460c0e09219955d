import { Module, type DynamicModule } from '@nestjs/common';
import type { Kysely } from 'kysely';
import type { AuditPublisher, EventBus, TokenVerifier } from '@hcp/platform';
import { ApprovalRepository } from './approval.repository';
import { ApprovalService, DEFAULT_APPROVAL_LIFETIMES } from './approval.service';
import type { ApproverAuthentication } from './approver';
import { CapabilityRepository } from './capability.repository';
import { CapabilityService } from './capability.service';
import type { GrantStoreDb } from './database';
import { GrantRepository } from './grant.repository';
import { GrantService } from './grant.service';
import { GrantStoreController } from './grant-store.controller';
import {
  GRANT_STORE_APPROVAL_LIFETIMES,
  GRANT_STORE_APPROVER_AUTH,
  GRANT_STORE_AUDIT,
  GRANT_STORE_BUS,
  GRANT_STORE_CLOCK,
  GRANT_STORE_DB,
  type ApprovalLifetimes,
  type Clock,
} from './grant-store.tokens';
import { GrantsChangedPublisher } from './grants-changed.publisher';
import { RevisionRepository } from './revision.repository';

/** What the grant-store module is built from; both run modes supply it. */
export interface GrantStoreModuleOptions {
  /** A migrated database (run `grantStoreMigrations` first). */
  readonly db: Kysely<GrantStoreDb>;
  readonly bus: EventBus;
  /** Epoch millis; default Date.now. */
  readonly clock?: Clock;
  /** Records grant and approval changes in the audit (I7); absent in unit tests only. */
  readonly audit?: AuditPublisher;
  /**
   * Verifies the operator token DecideApproval and ListApprovals need. Absent: the operator
   * id is read from metadata `hcp-principal-id`, which any caller can set (development only).
   */
  readonly verifier?: TokenVerifier;
  /** How long approvals stay usable; default DEFAULT_APPROVAL_LIFETIMES (15 min, at most 24 h). */
  readonly approvalLifetimes?: ApprovalLifetimes;
}

/**
 * The grant-store Nest module. Dynamic because its database and bus are made
 * outside Nest: by the embedded composition root (PGlite, in-process bus) or
 * by main.ts (PostgreSQL, NATS).
 */
@Module({})
export class GrantStoreModule {
  static forRoot(options: GrantStoreModuleOptions): DynamicModule {
    return {
      module: GrantStoreModule,
      controllers: [GrantStoreController],
      providers: [
        { provide: GRANT_STORE_DB, useValue: options.db },
        { provide: GRANT_STORE_BUS, useValue: options.bus },
        { provide: GRANT_STORE_CLOCK, useValue: options.clock ?? Date.now },
        { provide: GRANT_STORE_AUDIT, useValue: options.audit ?? null },
        {
          provide: GRANT_STORE_APPROVAL_LIFETIMES,
          useValue: options.approvalLifetimes ?? DEFAULT_APPROVAL_LIFETIMES,
        },
        {
          provide: GRANT_STORE_APPROVER_AUTH,
          useValue: (options.verifier !== undefined
            ? { mode: 'token', verifier: options.verifier }
            : { mode: 'trusted-metadata' }) satisfies ApproverAuthentication,
        },
        GrantRepository,
        CapabilityRepository,
        ApprovalRepository,
        RevisionRepository,
        GrantsChangedPublisher,
        GrantService,
        CapabilityService,
        ApprovalService,
      ],
      exports: [GrantService, CapabilityService, ApprovalService],
    };
  }
}
