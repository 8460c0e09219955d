import { createHash } from 'node:crypto';
import type { AuditEntry } from '@hcp/core';
import { checkLink, entryHash, GENESIS_HASH, hashedForm } from './chain';

const entry: AuditEntry = {
  id: 'aud_1',
  time: 1_800_000_000_123,
  decisionId: 'dec_1',
  principalId: 'agent-7',
  endpointFamily: 'tools/call',
  capabilityId: 'fs/read_file',
  resourceRaw: './a',
  resourceCanonical: '/srv/a',
  outcome: 'deny',
  reason: 'NO_MATCHING_GRANT',
  invariant: 'I5',
  handleIds: ['hdl_x'],
  seq: 9,
  prevHash: 'f'.repeat(64),
  hash: 'e'.repeat(64),
};

describe('audit hash chain', () => {
  it('hashes exactly sha256(prev_hash || canonical JSON without seq/prevHash/hash) — the README form', () => {
    // The literal text an operator recomputes: keys sorted (RFC 8785), absent fields left out.
    const text =
      '{"capabilityId":"fs/read_file","decisionId":"dec_1","endpointFamily":"tools/call",' +
      '"handleIds":["hdl_x"],"id":"aud_1","invariant":"I5","outcome":"deny","principalId":"agent-7",' +
      '"reason":"NO_MATCHING_GRANT","resourceCanonical":"/srv/a","resourceRaw":"./a","time":1800000000123}';
    const expected = createHash('sha256')
      .update(GENESIS_HASH + text, 'utf8')
      .digest('hex');
    expect(entryHash(GENESIS_HASH, entry)).toBe(expected);
    expect(hashedForm(entry)).not.toHaveProperty('seq');
  });

  it('ignores properties that are not entry fields (ingest metadata never enters the hash)', () => {
    const withExtra = { ...entry, source: 'edge', ingestedAt: 5 } as AuditEntry;
    expect(entryHash(GENESIS_HASH, withExtra)).toBe(entryHash(GENESIS_HASH, entry));
  });

  it('reports a gap, a broken link and a bad hash, in that order', () => {
    const prev = { seq: 1, hash: 'a'.repeat(64) };
    const good = { ...entry, seq: 2, prevHash: prev.hash, hash: entryHash(prev.hash, entry) };
    expect(checkLink(prev, good)).toBeUndefined();
    expect(checkLink(prev, { ...good, seq: 3 })?.reason).toBe('seq_gap');
    expect(checkLink(prev, { ...good, prevHash: 'b'.repeat(64) })?.reason).toBe(
      'prev_hash_mismatch',
    );
    expect(checkLink(prev, { ...good, resourceCanonical: '/etc/passwd' })).toMatchObject({
      reason: 'hash_mismatch',
      seq: 2,
      id: 'aud_1',
    });
  });
});
