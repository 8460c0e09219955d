import { INVARIANTS, REASON_CODE_NUMBERS, REASON_CODES } from '@hcp/core';
import { Invariant, ReasonCode } from './generated/hcp/core/v1/core';

// libs/core mirrors two proto enums by hand (core must not depend on generated
// code); these tests are what keeps the mirror honest in both directions.

/** name -> number of a ts-proto numeric enum, without the prefix, UNSPECIFIED and UNRECOGNIZED. */
function protoEnumEntries(enumObject: object, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of Object.entries(enumObject)) {
    // A numeric TS enum also maps numbers back to names; keep only name -> number.
    if (typeof value !== 'number') continue;
    if (key === 'UNRECOGNIZED' || key === `${prefix}UNSPECIFIED`) continue;
    // A value without the prefix keeps its full name, so the comparisons below report it.
    out.set(key.startsWith(prefix) ? key.slice(prefix.length) : key, value);
  }
  return out;
}

describe('hcp.core.v1.ReasonCode', () => {
  const proto = protoEnumEntries(ReasonCode, 'REASON_CODE_');

  it('has every libs/core reason code, with the same number', () => {
    for (const code of REASON_CODES) {
      expect({ code, number: proto.get(code) }).toEqual({
        code,
        number: REASON_CODE_NUMBERS[code],
      });
    }
  });

  it('has no code that libs/core lacks', () => {
    const core = new Map<string, number>(Object.entries(REASON_CODE_NUMBERS));
    for (const [name, number] of proto) {
      expect({ name, number: core.get(name) }).toEqual({ name, number });
    }
    expect(proto.size).toBe(REASON_CODES.length);
  });

  it('keeps 0 for UNSPECIFIED, which libs/core never uses', () => {
    expect(ReasonCode.REASON_CODE_UNSPECIFIED).toBe(0);
    expect(Object.values(REASON_CODE_NUMBERS)).not.toContain(0);
  });
});

describe('hcp.core.v1.Invariant', () => {
  it('is exactly I1..I8, the keys of INVARIANTS, numbered by their digit', () => {
    const proto = protoEnumEntries(Invariant, 'INVARIANT_');
    const expected = new Map(Object.keys(INVARIANTS).map((id) => [id, Number(id.slice(1))]));
    expect([...proto].sort()).toEqual([...expected].sort());
    expect([...proto.keys()].sort()).toEqual(['I1', 'I2', 'I3', 'I4', 'I5', 'I6', 'I7', 'I8']);
    expect(Invariant.INVARIANT_UNSPECIFIED).toBe(0);
  });
});
