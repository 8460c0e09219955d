import type { ResourceFacts } from '@hcp/core';
import { refusedFacts, resolvedFacts } from '../facts';

/** Every rule the id canonicaliser can report. */
export const ID_RULES = ['id.not_string', 'id.empty', 'id.too_long', 'id.not_printable'] as const;

/** An id canonicaliser rule name. */
export type IdRule = (typeof ID_RULES)[number];

/** Default bound on an opaque id. */
export const DEFAULT_MAX_ID_LENGTH = 512;

/** Configuration of the id canonicaliser. */
export interface IdCanonicalizerOptions {
  /** Longest id accepted; default 512. */
  readonly maxLength?: number;
}

/**
 * Opaque resource ids (tickets, records) that the provider takes verbatim:
 * the canonical form is the raw string itself, nothing trimmed or folded, so
 * the only job is to refuse what could not be an id or could mislead an
 * auditor (controls, bidi overrides, lone surrogates, line separators).
 */
export interface IdCanonicalizer {
  /** Never throws; synchronous because there is nothing to resolve. */
  canonicalize(raw: string): ResourceFacts;
}

// Cc controls, Cf format characters (zero-width, bidi overrides), Cs lone
// surrogates, Zl/Zp line and paragraph separators.
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

/** Builds an id canonicaliser. */
export function createIdCanonicalizer(options: IdCanonicalizerOptions = {}): IdCanonicalizer {
  const maxLength = options.maxLength ?? DEFAULT_MAX_ID_LENGTH;
  return {
    canonicalize(raw: string): ResourceFacts {
      if (typeof raw !== 'string') {
        return refusedFacts(
          'invalid',
          'id',
          '',
          'id.not_string',
          `expected a string, got ${typeof raw}`,
        );
      }
      if (raw.length === 0)
        return refusedFacts('invalid', 'id', raw, 'id.empty', 'the id is empty');
      if (raw.length > maxLength) {
        return refusedFacts(
          'invalid',
          'id',
          raw,
          'id.too_long',
          `${raw.length} characters exceed the limit of ${maxLength}`,
        );
      }
      if (NOT_PRINTABLE.test(raw)) {
        return refusedFacts(
          'invalid',
          'id',
          raw,
          'id.not_printable',
          'the id contains a control, format or unpaired surrogate character',
        );
      }
      return resolvedFacts({ kind: 'id', raw, canonical: raw });
    },
  };
}
