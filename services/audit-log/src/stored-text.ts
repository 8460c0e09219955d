import { escapeAuditText, hasLoneSurrogate, unescapeAuditText } from '@hcp/platform';

/**
 * How audit text reaches PostgreSQL without loss. PostgreSQL text (and jsonb) cannot hold U+0000,
 * and a lone UTF-16 surrogate has no UTF-8 form (the driver would silently write U+FFFD). A row
 * whose strings are all storable is written exactly as sent (`text_escaped = false`); a row with
 * any string that is not is written with every string escaped (`text_escaped = true`), in the one
 * escape the audit stream uses too (`escapeAuditText`: the body of a JSON string literal). It is
 * injective, so equality filters stay exact: a value is compared with the stored text in the form
 * its row would use (see `textEquals` in the repository).
 */

/** True when PostgreSQL text cannot hold the string as it is (a NUL, or a lone surrogate). */
export function needsEscape(s: string): boolean {
  return s.includes('\u0000') || hasLoneSurrogate(s);
}

/** The stored form of a string in an escaped row: NUL-free, well-formed UTF-16. */
export const escapeText = escapeAuditText;

/**
 * The original of an escaped row's string. Text that is not a valid escape (a row edited behind
 * the trigger's back) is returned as stored, so verify recomputes a different hash and names it.
 */
export const unescapeText = unescapeAuditText;
