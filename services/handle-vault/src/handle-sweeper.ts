import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { createLogger } from '@hcp/platform';
import { HandleService } from './handle.service';
import { VAULT_SWEEP_INTERVAL } from './handle-vault.tokens';

/**
 * Purges expired rows on an interval. The timer is unref'd (it never keeps a
 * process alive), a tick is skipped while the previous one still runs, and
 * module destroy stops the timer and waits for a running sweep, so the
 * database is never closed under it.
 */
@Injectable()
export class HandleSweeper implements OnModuleInit, OnModuleDestroy {
  private readonly log = createLogger('HandleSweeper');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    @Inject(HandleService) private readonly handles: HandleService,
    @Inject(VAULT_SWEEP_INTERVAL) private readonly intervalMs: number,
  ) {}

  onModuleInit(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sweep unless one is already running; failures are logged, the next tick retries. */
  tick(): void {
    if (this.running !== undefined) return;
    this.running = this.handles
      .sweepExpired()
      .then((purged) => {
        if (purged > 0) this.log.info({ purged }, 'expired handles purged');
      })
      .catch((err: unknown) => this.log.error({ err }, 'sweep failed; retrying next interval'))
      .finally(() => {
        this.running = undefined;
      });
  }
}
