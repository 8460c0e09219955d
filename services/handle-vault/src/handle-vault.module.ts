import { Module, type DynamicModule } from '@nestjs/common';
import type { Kysely } from 'kysely';
import type { VaultDb } from './database';
import type { VaultAuditPublisher } from './handle-audit';
import { HandleRepository } from './handle.repository';
import { HandleService } from './handle.service';
import { HandleSweeper } from './handle-sweeper';
import { HandleVaultController } from './handle-vault.controller';
import {
  VAULT_AUDIT,
  VAULT_CLOCK,
  VAULT_DB,
  VAULT_KEYRING,
  VAULT_LIMITS,
  VAULT_SWEEP_INTERVAL,
  type Clock,
} from './handle-vault.tokens';
import type { VaultKeyring } from './keyring';
import { resolveLimits, type VaultLimits } from './limits';

/** Default sweeper interval. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/** What the vault module is built from; both run modes supply it. */
export interface HandleVaultModuleOptions {
  /** A migrated database (run `migrateHandleVault` first). */
  readonly db: Kysely<VaultDb>;
  readonly audit: VaultAuditPublisher;
  readonly keys: VaultKeyring;
  /** Epoch millis; default Date.now. */
  readonly clock?: Clock;
  /** Overrides of DEFAULT_LIMITS. */
  readonly limits?: Partial<VaultLimits>;
  /** Sweeper period; 0 disables the periodic sweep (tests call sweepExpired). Default 60 s. */
  readonly sweepIntervalMs?: number;
}

/**
 * The handle-vault Nest module. Dynamic because its database, audit publisher
 * and keyring are made outside Nest: by the embedded composition root or by main.ts.
 */
@Module({})
export class HandleVaultModule {
  static forRoot(options: HandleVaultModuleOptions): DynamicModule {
    return {
      module: HandleVaultModule,
      controllers: [HandleVaultController],
      providers: [
        { provide: VAULT_DB, useValue: options.db },
        { provide: VAULT_AUDIT, useValue: options.audit },
        { provide: VAULT_KEYRING, useValue: options.keys },
        { provide: VAULT_LIMITS, useValue: resolveLimits(options.limits) },
        { provide: VAULT_CLOCK, useValue: options.clock ?? Date.now },
        {
          provide: VAULT_SWEEP_INTERVAL,
          useValue: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
        },
        HandleRepository,
        HandleService,
        HandleSweeper,
      ],
      exports: [HandleService],
    };
  }
}
