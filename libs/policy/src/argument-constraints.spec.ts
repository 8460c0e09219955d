import type { ArgumentConstraint } from '@hcp/core';
import {
  ARGUMENT_CONSTRAINT_LIMITS,
  argumentConstraintProblem,
  constraintHolds,
  describeConstraint,
  firstBrokenConstraint,
} from '@hcp/policy';

const holds = (c: ArgumentConstraint, args: Record<string, unknown> | undefined) =>
  constraintHolds(c, args);

describe('argument constraint rules', () => {
  it('one_of: JSON equality with scalars only; a missing argument fails', () => {
    const c: ArgumentConstraint = {
      argument: 'mode',
      kind: 'one_of',
      values: ['append', 3, true, null],
    };
    expect(holds(c, { mode: 'append' })).toBe(true);
    expect(holds(c, { mode: 3 })).toBe(true);
    expect(holds(c, { mode: true })).toBe(true);
    expect(holds(c, { mode: null })).toBe(true);
    expect(holds(c, { mode: 'Append' })).toBe(false);
    expect(holds(c, { mode: '3' })).toBe(false);
    expect(holds(c, { mode: ['append'] })).toBe(false);
    expect(holds(c, { mode: { v: 'append' } })).toBe(false);
    expect(holds(c, {})).toBe(false);
    expect(holds(c, undefined)).toBe(false);
  });

  it('pattern: full match (implicitly anchored), strings only, bounded input', () => {
    const c: ArgumentConstraint = {
      argument: 'branch',
      kind: 'pattern',
      pattern: 'feature/[a-z0-9-]+',
    };
    expect(holds(c, { branch: 'feature/x-1' })).toBe(true);
    expect(holds(c, { branch: 'main' })).toBe(false);
    expect(holds(c, { branch: 'feature/x; rm -rf /' })).toBe(false);
    expect(holds(c, { branch: 'xfeature/x' })).toBe(false);
    expect(holds(c, { branch: 42 })).toBe(false);
    const long = 'feature/' + 'a'.repeat(ARGUMENT_CONSTRAINT_LIMITS.patternInputLength);
    expect(holds(c, { branch: long })).toBe(false);
  });

  it('pattern: runs in linear time on inputs that make backtracking engines explode', () => {
    const evil: ArgumentConstraint = { argument: 's', kind: 'pattern', pattern: '(a+)+$' };
    const input = 'a'.repeat(ARGUMENT_CONSTRAINT_LIMITS.patternInputLength - 1) + 'b';
    const started = performance.now();
    expect(holds(evil, { s: input })).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('max_length: counts Unicode code points, strings only', () => {
    const c: ArgumentConstraint = { argument: 'title', kind: 'max_length', maxLength: 3 };
    expect(holds(c, { title: 'abc' })).toBe(true);
    expect(holds(c, { title: '😀😀😀' })).toBe(true); // 6 UTF-16 units, 3 code points
    expect(holds(c, { title: 'abcd' })).toBe(false);
    expect(holds(c, { title: 123 })).toBe(false);
    expect(holds({ argument: 'title', kind: 'max_length', maxLength: 0 }, { title: '' })).toBe(
      true,
    );
  });

  it('range: finite numbers within inclusive bounds; either bound may be open', () => {
    const c: ArgumentConstraint = { argument: 'n', kind: 'range', min: 1, max: 10 };
    expect(holds(c, { n: 1 })).toBe(true);
    expect(holds(c, { n: 10 })).toBe(true);
    expect(holds(c, { n: 10.5 })).toBe(false);
    expect(holds(c, { n: 0 })).toBe(false);
    expect(holds(c, { n: '5' })).toBe(false);
    expect(holds({ argument: 'n', kind: 'range', max: 0 }, { n: -1e9 })).toBe(true);
    expect(holds({ argument: 'n', kind: 'range', min: 0 }, { n: 1e9 })).toBe(true);
  });

  it('absent: holds only when the key is not there at all (null is present)', () => {
    const c: ArgumentConstraint = { argument: 'recursive', kind: 'absent' };
    expect(holds(c, {})).toBe(true);
    expect(holds(c, { other: 1 })).toBe(true);
    expect(holds(c, { recursive: null })).toBe(false);
    expect(holds(c, { recursive: false })).toBe(false);
    expect(holds(c, undefined)).toBe(false);
  });

  it('reads own keys only: an inherited name is not an argument', () => {
    const c: ArgumentConstraint = { argument: 'constructor', kind: 'absent' };
    expect(holds(c, {})).toBe(true);
    expect(holds({ argument: 'toString', kind: 'max_length', maxLength: 100 }, {})).toBe(false);
  });

  it('firstBrokenConstraint returns the first failing one, undefined when all hold', () => {
    const list: ArgumentConstraint[] = [
      { argument: 'a', kind: 'one_of', values: ['x'] },
      { argument: 'b', kind: 'absent' },
    ];
    expect(firstBrokenConstraint(list, { a: 'x' })).toBeUndefined();
    expect(firstBrokenConstraint(list, { a: 'y', b: 1 })).toBe(list[0]);
    expect(firstBrokenConstraint(list, { a: 'x', b: 1 })).toBe(list[1]);
    expect(firstBrokenConstraint(undefined, undefined)).toBeUndefined();
    expect(firstBrokenConstraint([], undefined)).toBeUndefined();
  });

  it('describes a constraint without any argument value, bounded', () => {
    expect(describeConstraint({ argument: 'n', kind: 'range', min: 1 })).toBe('range [1, +inf]');
    const many: ArgumentConstraint = {
      argument: 'x',
      kind: 'one_of',
      values: Array.from({ length: 60 }, (_, i) => `value-${i}`),
    };
    expect(describeConstraint(many).length).toBeLessThanOrEqual(160);
  });
});

describe('argumentConstraintProblem (what grant-store refuses)', () => {
  it.each<[string, ArgumentConstraint, string | undefined]>([
    ['a valid one_of', { argument: 'm', kind: 'one_of', values: ['a', 1, false, null] }, undefined],
    ['an empty name', { argument: '', kind: 'absent' }, 'argument'],
    ['a control character in the name', { argument: 'a\nb', kind: 'absent' }, 'argument'],
    ['an empty one_of', { argument: 'm', kind: 'one_of', values: [] }, 'oneOf.values'],
    [
      'a non-scalar in one_of',
      { argument: 'm', kind: 'one_of', values: [{} as unknown as string] },
      'oneOf.values[0]',
    ],
    [
      'a non-finite number in one_of',
      { argument: 'm', kind: 'one_of', values: [Number.NaN] },
      'oneOf.values[0]',
    ],
    ['a valid pattern', { argument: 'p', kind: 'pattern', pattern: '[a-z]+' }, undefined],
    ['an invalid pattern', { argument: 'p', kind: 'pattern', pattern: '(' }, 'pattern'],
    [
      'a lookahead RE2 does not support',
      { argument: 'p', kind: 'pattern', pattern: '(?=a)a' },
      'pattern',
    ],
    ['a backreference', { argument: 'p', kind: 'pattern', pattern: '(a)\\1' }, 'pattern'],
    [
      'a pattern over the length bound',
      { argument: 'p', kind: 'pattern', pattern: 'a'.repeat(257) },
      'pattern',
    ],
    ['a negative max_length', { argument: 's', kind: 'max_length', maxLength: -1 }, 'maxLength'],
    ['a fractional max_length', { argument: 's', kind: 'max_length', maxLength: 1.5 }, 'maxLength'],
    ['a range with no bound', { argument: 'n', kind: 'range' }, 'range'],
    ['a range with min > max', { argument: 'n', kind: 'range', min: 2, max: 1 }, 'range'],
    ['an infinite bound', { argument: 'n', kind: 'range', max: Infinity }, 'range.max'],
    ['absent', { argument: 'n', kind: 'absent' }, undefined],
  ])('%s', (_name, c, field) => {
    expect(argumentConstraintProblem(c)?.field).toBe(field);
  });

  it('a malformed constraint that slipped through never holds (narrows, never widens)', () => {
    expect(holds({ argument: 'p', kind: 'pattern', pattern: '(' }, { p: '(' })).toBe(false);
    const unknownRule = { argument: 'p', kind: 'glob' } as unknown as ArgumentConstraint;
    expect(holds(unknownRule, { p: 'x' })).toBe(false);
  });
});
