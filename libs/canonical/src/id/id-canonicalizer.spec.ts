import { createIdCanonicalizer } from './id-canonicalizer';

describe('id canonicaliser', () => {
  const ids = createIdCanonicalizer();

  it('canonical is the raw string, untrimmed and unfolded', () => {
    for (const raw of ['ticket-42', ' Padded ', 'café ☕', 'a/b/../c']) {
      expect(ids.canonicalize(raw)).toEqual({
        status: 'resolved',
        resource: { kind: 'id', raw, canonical: raw },
      });
    }
  });

  it.each([
    ['', 'id.empty'],
    ['a\u0000b', 'id.not_printable'],
    ['line\nbreak', 'id.not_printable'],
    ['rtl\u202eoverride', 'id.not_printable'],
    ['zero\u200bwidth', 'id.not_printable'],
    ['lone\ud800surrogate', 'id.not_printable'],
    ['para\u2029sep', 'id.not_printable'],
    ['x'.repeat(513), 'id.too_long'],
  ])('refuses %j as invalid (%s)', (raw, rule) => {
    const facts = ids.canonicalize(raw);
    expect(facts.status === 'invalid' && facts.rule).toBe(rule);
  });

  it('admits the neighbour at the length bound and honours maxLength', () => {
    expect(ids.canonicalize('x'.repeat(512)).status).toBe('resolved');
    expect(createIdCanonicalizer({ maxLength: 4 }).canonicalize('abcde').status).toBe('invalid');
    expect(ids.canonicalize(null as unknown as string)).toMatchObject({
      status: 'invalid',
      rule: 'id.not_string',
    });
  });
});
