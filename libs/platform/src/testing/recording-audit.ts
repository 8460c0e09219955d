import { HcpError, type AuditEntry } from '@hcp/core';
import {
  emptyAuditStats,
  type AuditPublisher,
  type AuditPublisherStats,
} from '../audit/audit-publisher';

/**
 * The one in-memory AuditPublisher of the unit specs: keeps every entry it accepts, in order, so a
 * spec can assert what a service recorded (I7) without NATS. It can be told to refuse, the way the
 * real publisher does at its bound, so the "no unaudited work" paths are testable too.
 */
export class RecordingAudit implements AuditPublisher {
  readonly entries: AuditEntry[] = [];
  /** While true, record() throws AUDIT_UNAVAILABLE and available() is false (a full buffer). */
  full = false;
  /** Refuses only the next record(), while available() still says true (a race lost at the bound). */
  refuseNext = false;
  readonly pending = 0;

  record(entry: AuditEntry): void {
    if (this.full || this.refuseNext) {
      this.refuseNext = false;
      throw new HcpError('AUDIT_UNAVAILABLE', 'test audit buffer is full');
    }
    this.entries.push(entry);
  }

  /** Like record (throws synchronously when refusing); resolves at once, durable or not. */
  recordDurable(entry: AuditEntry): Promise<void> {
    this.record(entry);
    return Promise.resolve();
  }

  available(): boolean {
    return !this.full;
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Sends nothing, so counts nothing. */
  stats(): AuditPublisherStats {
    return emptyAuditStats();
  }

  /** The entries recorded since the last call (and forgets them). */
  take(): AuditEntry[] {
    return this.entries.splice(0);
  }

  /** Forgets every entry and accepts again (between tests). */
  reset(): void {
    this.entries.length = 0;
    this.full = false;
    this.refuseNext = false;
  }
}
