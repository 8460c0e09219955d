import { HcpError } from '@hcp/core';
import * as audit from '../generated/hcp/audit/v1/audit_log';
import { auditQueryFromProto, verifyRangeFromProto } from './audit-query';

function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e: unknown) {
    if (e instanceof HcpError && e.reason === 'INPUT_INVALID') return String(e.details['field']);
    throw e;
  }
  return undefined;
}

describe('audit query converters', () => {
  it('keeps only the filters that are set, in domain terms', () => {
    const q = auditQueryFromProto(
      audit.QueryEntriesRequest.fromPartial({
        principalId: 'alice',
        outcome: 2,
        startTime: { seconds: 10, nanos: 0 },
        pageSize: 5,
        pageToken: 'tok',
      }),
    );
    expect(q).toEqual({
      filter: { principalId: 'alice', outcome: 'deny', from: 10_000 },
      pageSize: 5,
      pageToken: 'tok',
    });
  });

  it('refuses unknown enums, long text, negative sizes and an inverted range by field', () => {
    const q = (o: Partial<audit.QueryEntriesRequest>) =>
      invalidField(() => auditQueryFromProto(audit.QueryEntriesRequest.fromPartial(o)));
    expect(q({ reason: 999 as never })).toBe('reason');
    expect(q({ principalId: 'x'.repeat(257) })).toBe('principalId');
    expect(q({ pageSize: -1 })).toBe('pageSize');
    expect(invalidField(() => verifyRangeFromProto({ fromSeq: 5, toSeq: 2 }))).toBe('to_seq');
    expect(verifyRangeFromProto({ fromSeq: 0, toSeq: 0 })).toEqual({});
  });
});
