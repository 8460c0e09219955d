import type { AuditEntryRepository, AuditFilter, StoredAuditEntry } from './audit-entry.repository';
import { checkLink, GENESIS_HASH, type BrokenLink } from './chain';
import { EntryNotFoundError } from './errors';
import { decodeCursor, encodeCursor } from './page-cursor';

/** Page size when the caller gives none. */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page a caller may ask for. */
export const MAX_PAGE_SIZE = 1000;
/** Rows verify reads per round trip. */
const VERIFY_PAGE = 1000;

/** One page of a query, oldest first. */
export interface EntriesPage {
  readonly entries: StoredAuditEntry[];
  /** Absent on the last page. */
  readonly nextCursor?: string;
}

/** The outcome of recomputing (part of) the chain. */
export interface VerifyResult {
  readonly ok: boolean;
  /** Entries read and recomputed, including the broken one. */
  readonly checked: number;
  /** seq and hash of the last entry checked (0 and the genesis hash when none). */
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly firstBroken?: BrokenLink;
}

/** Read side of the audit: query, fetch and verify; shared by the REST and gRPC front doors. */
export class AuditQueryService {
  constructor(private readonly entries: AuditEntryRepository) {}

  /**
   * Entries matching every filter, in chain order. `limit` is already validated (1..1000);
   * `cursorField` names the cursor parameter in the caller's terms for error messages.
   */
  async query(
    filter: AuditFilter,
    page: { readonly limit: number; readonly cursor?: string; readonly cursorField: string },
  ): Promise<EntriesPage> {
    const after =
      page.cursor === undefined ? 0 : decodeCursor(page.cursor, filter, page.cursorField);
    const rows = await this.entries.query(filter, after, page.limit + 1);
    if (rows.length <= page.limit) return { entries: rows };
    const entries = rows.slice(0, page.limit);
    return { entries, nextCursor: encodeCursor(filter, entries[entries.length - 1]!.seq) };
  }

  async get(id: string): Promise<StoredAuditEntry> {
    const entry = await this.entries.get(id);
    if (entry === undefined) throw new EntryNotFoundError(id);
    return entry;
  }

  /**
   * Recomputes the chain from `fromSeq` (default 1) to `toSeq` (default: the head when the call
   * starts) a page at a time, and reports the first broken link: a missing seq, a prev_hash that
   * is not the previous entry's hash, or a hash that does not recompute. Checking up to the head
   * also compares the last entry with the chain head row, which catches a rewritten last entry.
   */
  async verify(range: { fromSeq?: number; toSeq?: number } = {}): Promise<VerifyResult> {
    const head = await this.entries.head();
    const from = Math.max(1, range.fromSeq ?? 1);
    const to = Math.min(
      range.toSeq === undefined || range.toSeq === 0 ? head.seq : range.toSeq,
      head.seq,
    );
    if (from > to) return { ok: true, checked: 0, lastSeq: 0, lastHash: '' };

    let previous: { seq: number; hash: string; id: string } = {
      seq: 0,
      hash: GENESIS_HASH,
      id: '',
    };
    if (from > 1) {
      const before = await this.entries.atSeq(from - 1);
      if (before === undefined)
        return broken(0, previous, {
          seq: from - 1,
          id: '',
          reason: 'seq_gap',
          expected: '',
          stored: '',
        });
      previous = before;
    }
    let checked = 0;
    while (previous.seq < to) {
      const rows = await this.entries.range(previous.seq + 1, to, VERIFY_PAGE);
      if (rows.length === 0)
        return broken(checked, previous, {
          seq: previous.seq + 1,
          id: '',
          reason: 'seq_gap',
          expected: previous.hash,
          stored: '',
        });
      for (const row of rows) {
        checked++;
        const link = checkLink(previous, row);
        if (link !== undefined) return broken(checked, row, link);
        previous = row;
      }
    }
    if (to === head.seq && previous.hash !== head.hash)
      return broken(checked, previous, {
        seq: previous.seq,
        id: previous.id,
        reason: 'hash_mismatch',
        expected: head.hash,
        stored: previous.hash,
      });
    return { ok: true, checked, lastSeq: previous.seq, lastHash: previous.hash };
  }
}

function broken(
  checked: number,
  last: { seq: number; hash: string },
  link: BrokenLink,
): VerifyResult {
  return { ok: false, checked, lastSeq: last.seq, lastHash: last.hash, firstBroken: link };
}
