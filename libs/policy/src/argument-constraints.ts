import { RE2JS } from 're2js';
import type { ArgumentConstraint, JsonScalar } from '@hcp/core';

/**
 * Bounds on argument constraints. grant-store refuses a grant beyond them (INPUT_INVALID), and
 * they keep one constraint cheap to check on every decision: a pattern is short, runs on RE2
 * (linear time, no backtracking, so no ReDoS) and never sees more than `patternInputLength`
 * characters.
 */
export const ARGUMENT_CONSTRAINT_LIMITS = {
  constraintsPerGrant: 32,
  argumentNameLength: 128,
  valuesPerOneOf: 64,
  scalarStringLength: 1024,
  patternLength: 256,
  /** A longer string never matches a pattern (the constraint fails closed). */
  patternInputLength: 4096,
  /** The proto's uint32. */
  maxLength: 4_294_967_295,
} as const;

/** The call's arguments as the engine sees them: the validated top-level object, or absent. */
export type CallArguments = Readonly<Record<string, unknown>>;

/** A malformed constraint: the field (relative to the constraint) and why. */
export interface ConstraintProblem {
  readonly field: string;
  readonly message: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Why a constraint is malformed, or undefined when it is well formed. grant-store calls it so a
 * bad constraint is refused when written; the matcher also treats a malformed one as never
 * holding, so a constraint that slipped past validation narrows rather than widens.
 */
export function argumentConstraintProblem(c: ArgumentConstraint): ConstraintProblem | undefined {
  const L = ARGUMENT_CONSTRAINT_LIMITS;
  const name: unknown = c.argument;
  if (typeof name !== 'string' || name === '') return { field: 'argument', message: 'is required' };
  if (name.length > L.argumentNameLength)
    return { field: 'argument', message: `is longer than ${L.argumentNameLength} characters` };
  if (CONTROL.test(name)) return { field: 'argument', message: 'contains a control character' };
  switch (c.kind) {
    case 'one_of': {
      if (!Array.isArray(c.values) || c.values.length === 0)
        return { field: 'oneOf.values', message: 'needs at least one value' };
      if (c.values.length > L.valuesPerOneOf)
        return { field: 'oneOf.values', message: `has more than ${L.valuesPerOneOf} entries` };
      for (let i = 0; i < c.values.length; i++) {
        const v: unknown = c.values[i];
        const bad =
          v === null || typeof v === 'boolean'
            ? undefined
            : typeof v === 'number'
              ? Number.isFinite(v)
                ? undefined
                : 'must be a finite number'
              : typeof v === 'string'
                ? v.length > L.scalarStringLength
                  ? `is longer than ${L.scalarStringLength} characters`
                  : undefined
                : 'must be a JSON scalar (string, number, boolean or null)';
        if (bad !== undefined) return { field: `oneOf.values[${i}]`, message: bad };
      }
      return undefined;
    }
    case 'pattern': {
      const p: unknown = c.pattern;
      if (typeof p !== 'string' || p === '') return { field: 'pattern', message: 'is required' };
      if (p.length > L.patternLength)
        return { field: 'pattern', message: `is longer than ${L.patternLength} characters` };
      return compiled(p) === null
        ? { field: 'pattern', message: 'is not a valid RE2 pattern' }
        : undefined;
    }
    case 'max_length':
      return Number.isSafeInteger(c.maxLength) && c.maxLength >= 0 && c.maxLength <= L.maxLength
        ? undefined
        : { field: 'maxLength', message: `must be an integer 0..${L.maxLength}` };
    case 'range': {
      const { min, max } = c;
      if (min === undefined && max === undefined)
        return { field: 'range', message: 'needs min, max or both' };
      if (min !== undefined && !Number.isFinite(min))
        return { field: 'range.min', message: 'must be a finite number' };
      if (max !== undefined && !Number.isFinite(max))
        return { field: 'range.max', message: 'must be a finite number' };
      if (min !== undefined && max !== undefined && min > max)
        return { field: 'range', message: 'min is greater than max' };
      return undefined;
    }
    case 'absent':
      return undefined;
    default:
      return { field: 'rule', message: 'must be one of oneOf, pattern, maxLength, range, absent' };
  }
}

/**
 * True when the arguments satisfy the constraint. Arguments the decision point was not given
 * satisfy nothing; a missing argument satisfies only `absent`; a JSON null is present.
 */
export function constraintHolds(c: ArgumentConstraint, args: CallArguments | undefined): boolean {
  if (args === undefined) return false;
  const present = Object.prototype.hasOwnProperty.call(args, c.argument);
  if (c.kind === 'absent') return !present;
  if (!present) return false;
  const value = args[c.argument];
  switch (c.kind) {
    case 'one_of':
      return isScalar(value) && c.values.some((v) => v === value);
    case 'pattern': {
      if (typeof value !== 'string') return false;
      if (value.length > ARGUMENT_CONSTRAINT_LIMITS.patternInputLength) return false;
      if (c.pattern.length > ARGUMENT_CONSTRAINT_LIMITS.patternLength) return false;
      const re = compiled(c.pattern);
      return re !== null && re.matches(value);
    }
    case 'max_length':
      return typeof value === 'string' && codePointsAtMost(value, c.maxLength);
    case 'range':
      return (
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (c.min === undefined || value >= c.min) &&
        (c.max === undefined || value <= c.max)
      );
    default:
      // An unknown rule never holds: fail closed.
      return false;
  }
}

/** The first constraint the arguments break, or undefined when all hold (or there are none). */
export function firstBrokenConstraint(
  constraints: readonly ArgumentConstraint[] | undefined,
  args: CallArguments | undefined,
): ArgumentConstraint | undefined {
  if (constraints === undefined) return undefined;
  for (const c of constraints) if (!constraintHolds(c, args)) return c;
  return undefined;
}

const DESCRIPTION_MAX = 160;

/**
 * The rule of a constraint for operators, e.g. `one_of ["append"]`. It names the constraint and
 * never the argument's value, so a decision or audit entry cannot leak what the caller sent.
 */
export function describeConstraint(c: ArgumentConstraint): string {
  let text: string;
  switch (c.kind) {
    case 'one_of':
      text = `one_of ${JSON.stringify(c.values)}`;
      break;
    case 'pattern':
      text = `pattern ${JSON.stringify(c.pattern)}`;
      break;
    case 'max_length':
      text = `max_length ${c.maxLength}`;
      break;
    case 'range':
      text = `range [${c.min ?? '-inf'}, ${c.max ?? '+inf'}]`;
      break;
    case 'absent':
      text = 'absent';
      break;
    default:
      text = 'unknown rule';
  }
  return text.length > DESCRIPTION_MAX ? `${text.slice(0, DESCRIPTION_MAX - 3)}...` : text;
}

/** Why a grant's constraints do not admit these arguments, naming the broken constraint. */
export function describeBrokenConstraint(
  c: ArgumentConstraint,
  args: CallArguments | undefined,
): string {
  if (args === undefined)
    return `arguments not provided to the decision point; grant constrains argument ${c.argument}`;
  const missing = !Object.prototype.hasOwnProperty.call(args, c.argument);
  return `argument ${c.argument}${missing ? ' (missing)' : ''} breaks ${describeConstraint(c)}`;
}

function isScalar(value: unknown): value is JsonScalar {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean'
  );
}

function codePointsAtMost(s: string, max: number): boolean {
  if (s.length <= max) return true; // UTF-16 units >= code points
  let count = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    if (++count > max) return false;
  }
  return true;
}

// Compiled patterns by source text. RE2 programs are immutable, so sharing one across grants
// is safe; the cache is cleared when full so a stream of distinct patterns cannot grow it.
const PATTERN_CACHE_MAX = 1024;
const patternCache = new Map<string, RE2JS | null>();

/** The compiled RE2 program of a pattern, or null when RE2 refuses it. */
function compiled(pattern: string): RE2JS | null {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    try {
      re = RE2JS.compile(pattern);
    } catch {
      re = null;
    }
    if (patternCache.size >= PATTERN_CACHE_MAX) patternCache.clear();
    patternCache.set(pattern, re);
  }
  return re;
}
