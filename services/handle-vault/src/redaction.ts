/**
 * The Peek redactor. A preview exists so an agent (and the model behind it)
 * can see what a handle holds without the vault handing credentials into a
 * prompt. It is deliberately simple, linear-time on adversarial input, and
 * biased towards over-redaction: a masked commit hash costs less than a leaked
 * token. It is not a DLP engine; ResolveForPipe (policy-checked) is the only
 * way to the real bytes. The rules, each replacing a span with `[REDACTED]`:
 *
 * 1. credential-named keys: `key=value`, `key: value`, `"key": "value"`,
 *    `'key': 'value'`, `--key=value` where the key contains password/passwd/passphrase/pwd,
 *    secret, token (not "tokens"), api key, access key, private key,
 *    credential, authorization/authorisation, cookie, session id/key/token or
 *    signature (any case, any `_ . -` spelling). The value is masked (inside
 *    its quotes; an `Authorization: Bearer x` keeps the scheme word).
 * 2. `Bearer <token>` and `Basic <credentials>` (8+ token characters).
 * 3. the password in a URL's userinfo: `scheme://user:[REDACTED]@host`.
 * 4. PEM private key bodies between `-----BEGIN ... PRIVATE KEY-----` and
 *    `-----END` (to the end of the text when the END line is missing).
 * 5. AWS access key ids: `AKIA` or `ASIA` + 16 upper-case letters/digits.
 * 6. long opaque strings: a run of base64/base64url characters
 *    (`A-Z a-z 0-9 + / _ -`, optional `=` padding) that contains 32+ hex
 *    digits in a row (with at least one digit and one letter), or has a
 *    `/`-separated piece of 32+ characters mixing upper case, lower case and
 *    digits. The whole run is masked. Paths, UUIDs, words and snake_case or
 *    UPPER_CASE identifiers stay readable; 32+ character camelCase words with
 *    a digit, git hashes and hex digests are masked (the accepted cost).
 *
 * Not covered (documented, not silently assumed): secrets with no marker
 * (a bare password in prose), key names outside the list, `--password x`
 * (space-separated) flags, base64 secrets whose `/`-pieces are all shorter than 32.
 */

/** What replaces each secret span. */
export const REDACTED = '[REDACTED]';

/** A half-open range of UTF-16 offsets in the text. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

// ---------- detectors ----------

// Bounded quantifiers and anchored starts keep every pattern linear on hostile input.
// A key starts after a non-key character (leading dashes allowed: `--password=x`), so a long
// dashed word is tried once, not at every dash.
const KEY_VALUE = /(?<![\w.-])-*(["']?)([A-Za-z_][\w.-]{0,127})\1[ \t]*[:=][ \t]*/g;
const CREDENTIAL_KEY =
  /pass(?:word|wd|phrase)|^pass$|pwd|secret|token(?!s)|api[_.-]?key|access[_.-]?key|private[_.-]?key|credential|authori[sz]ation|cookie|session[_.-]?(?:id|key|token)|signature/i;
const AUTH_SCHEME_WORD = /(?:Bearer|Basic|Token)[ \t]+/iy;
// Characters that end an unquoted value.
const VALUE_END = /[\s"'&;,<>{}[\]()]/;
const AUTH_SCHEME = /\b(?:Bearer|Basic)[ \t]+([A-Za-z0-9._~+/-]{8,}=*)/dgi;
const URL_PASSWORD = /\b[A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/[^\s:@/]+:([^\s@/]+)@/dg;
const PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/g;
const AWS_KEY_ID = /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g;
const LONG_RUN = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}/g;
const HEX_RUN = /[0-9a-fA-F]{32,}/g;

function keyValueSpans(text: string, out: Span[]): void {
  const re = new RegExp(KEY_VALUE.source, KEY_VALUE.flags);
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const key = m[2] ?? '';
    const valueStart = m.index + m[0].length;
    if (!CREDENTIAL_KEY.test(key)) {
      // Not consumed: `url=https://x/?token=abc` must still find the token inside the value.
      re.lastIndex = m.index + 1;
      continue;
    }
    const span = valueSpan(text, valueStart);
    if (span !== undefined && span.end > span.start) out.push(span);
    re.lastIndex = Math.max(span?.end ?? valueStart, valueStart, m.index + 1);
  }
}

function valueSpan(text: string, at: number): Span | undefined {
  const quote = text[at];
  if (quote === '"' || quote === "'") {
    let j = at + 1;
    while (j < text.length && text[j] !== quote && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
    return { start: at + 1, end: Math.min(j, text.length) };
  }
  AUTH_SCHEME_WORD.lastIndex = at;
  const start = AUTH_SCHEME_WORD.test(text) ? AUTH_SCHEME_WORD.lastIndex : at;
  let end = start;
  while (end < text.length && !VALUE_END.test(text[end] ?? '')) end++;
  return { start, end };
}

function groupSpans(pattern: RegExp, text: string, out: Span[]): void {
  for (const m of text.matchAll(new RegExp(pattern.source, pattern.flags))) {
    const range = m.indices?.[1];
    if (range !== undefined) out.push({ start: range[0], end: range[1] });
  }
}

function pemSpans(text: string, out: Span[]): void {
  const re = new RegExp(PEM_BEGIN.source, PEM_BEGIN.flags);
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const bodyStart = m.index + m[0].length;
    const endAt = text.indexOf('-----END', bodyStart);
    const bodyEnd = endAt === -1 ? text.length : endAt;
    if (bodyEnd > bodyStart) out.push({ start: bodyStart, end: bodyEnd });
    re.lastIndex = Math.max(bodyEnd, bodyStart);
  }
}

function wholeMatchSpans(
  pattern: RegExp,
  text: string,
  out: Span[],
  keep?: (s: string) => boolean,
) {
  for (const m of text.matchAll(new RegExp(pattern.source, pattern.flags))) {
    if (keep === undefined || keep(m[0])) out.push({ start: m.index, end: m.index + m[0].length });
  }
}

/** Rule 6: is this base64-alphabet run an opaque secret rather than a path or a word? */
export function looksLikeSecret(run: string): boolean {
  const body = run.replace(/=+$/, '');
  for (const hex of body.matchAll(HEX_RUN)) {
    if (/[0-9]/.test(hex[0]) && /[a-fA-F]/.test(hex[0])) return true;
  }
  return body
    .split('/')
    .some((p) => p.length >= 32 && /[A-Z]/.test(p) && /[a-z]/.test(p) && /[0-9]/.test(p));
}

/** Every secret span the rules find, sorted and with overlapping or touching spans merged. */
export function findSecretSpans(text: string): Span[] {
  const spans: Span[] = [];
  keyValueSpans(text, spans);
  groupSpans(AUTH_SCHEME, text, spans);
  groupSpans(URL_PASSWORD, text, spans);
  pemSpans(text, spans);
  wholeMatchSpans(AWS_KEY_ID, text, spans);
  wholeMatchSpans(LONG_RUN, text, spans, looksLikeSecret);
  spans.sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: Span[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start <= last.end)
      merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, s.end) };
    else merged.push(s);
  }
  return merged;
}

/** The text with each secret span replaced; `markers` are the output offsets where each `[REDACTED]` starts. */
export function redactText(text: string): { text: string; markers: number[] } {
  const parts: string[] = [];
  const markers: number[] = [];
  let at = 0;
  let length = 0;
  for (const s of findSecretSpans(text)) {
    const plain = text.slice(at, s.start);
    parts.push(plain, REDACTED);
    length += plain.length;
    markers.push(length);
    length += REDACTED.length;
    at = s.end;
  }
  parts.push(text.slice(at));
  return { text: parts.join(''), markers };
}

// ---------- preview ----------

/** Peek's answer before metadata is attached. */
export interface Preview {
  readonly preview: string;
  /** True when the payload is longer than what the preview shows. */
  readonly truncated: boolean;
  /** How many `[REDACTED]` markers begin inside the preview. */
  readonly redactionCount: number;
}

// Controls other than tab, LF and CR would let a payload drive whatever terminal renders the preview.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

/**
 * The bounded, redacted preview of a payload: UTF-8 text is redacted as a whole
 * and then cut to at most `maxBytes` bytes on a character boundary (redacting
 * first means a secret straddling the cut is still masked). Anything that is
 * not UTF-8 text, or contains NUL, is summarised, never shown.
 */
export function renderPreview(payload: Uint8Array, maxBytes: number): Preview {
  if (payload.length === 0) return { preview: '', truncated: false, redactionCount: 0 };
  const text = decodeText(payload);
  if (text === undefined) {
    const summary = cutUtf8(`[binary payload: ${payload.length} bytes]`, maxBytes).head;
    return { preview: summary, truncated: true, redactionCount: 0 };
  }
  const redacted = redactText(text.replace(CONTROL, '\uFFFD'));
  const { head, cut } = cutUtf8(redacted.text, maxBytes);
  return {
    preview: head,
    truncated: cut,
    redactionCount: redacted.markers.filter((m) => m < head.length).length,
  };
}

function decodeText(payload: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
    return text.includes('\u0000') ? undefined : text;
  } catch {
    return undefined;
  }
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes`. */
function cutUtf8(text: string, maxBytes: number): { head: string; cut: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { head: text, cut: false };
  let end = maxBytes;
  // Back off to the lead byte of a character the bound would split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return { head: bytes.subarray(0, end).toString('utf8'), cut: true };
}
