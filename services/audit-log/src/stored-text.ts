/**
 * How audit text reaches PostgreSQL without loss. PostgreSQL text (and jsonb) cannot hold U+0000,
 * and a lone UTF-16 surrogate has no UTF-8 form (the driver would silently write U+FFFD). A row
 * whose strings are all storable is written exactly as sent (`text_escaped = false`); a row with
 * any string that is not is written with every string escaped (`text_escaped = true`).
 *
 * The escape is the body of a JSON string literal as `JSON.stringify` writes it (RFC 8259 escapes;
 * since ES2019 a lone surrogate becomes `\udXXX`), so any JSON parser reads it back and no codec is
 * hand-written here. It is injective, so equality filters stay exact: a value is compared with the
 * stored text in the form its row would use (see `textEquals` in the repository).
 */

/** A lone surrogate: in a `u` regex a paired one is an astral code point, an unpaired one is Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/** True when PostgreSQL text cannot hold the string as it is (a NUL, or a lone surrogate). */
export function needsEscape(s: string): boolean {
  return s.includes('\u0000') || LONE_SURROGATE.test(s);
}

/** The stored form of a string in an escaped row: NUL-free, well-formed UTF-16. */
export function escapeText(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/**
 * The original of an escaped row's string. Text that is not a valid escape (a row edited behind
 * the trigger's back) is returned as stored, so verify recomputes a different hash and names it.
 */
export function unescapeText(stored: string): string {
  try {
    const value: unknown = JSON.parse(`"${stored}"`);
    return typeof value === 'string' ? value : stored;
  } catch {
    return stored;
  }
}
