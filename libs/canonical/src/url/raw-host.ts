/**
 * Recovers the host text the caller actually typed, so the canonicaliser can
 * tell `http://127.0.0.1/` from `http://2130706433/`, `http://0x7f.1/` or
 * `http://127.1/`: WHATWG URL normalises all of them to `127.0.0.1`, and the
 * parsed URL no longer shows that an encoding trick was used.
 *
 * This mirrors the authority-finding steps of the WHATWG URL parser (scheme,
 * slashes and backslashes, relative references against a base, userinfo,
 * port, brackets) closely enough for that comparison; when it cannot tell, it
 * returns undefined and the caller fails closed.
 */

// Schemes WHATWG calls "special": `\` acts like `/` and slashes after the
// scheme are optional. `file` is special too but has its own host rules, so
// it is left out and yields undefined.
const SPECIAL_SCHEMES = new Set(['http', 'https', 'ws', 'wss', 'ftp']);
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

function isSlash(c: string | undefined, special: boolean): boolean {
  return c === '/' || (special && c === '\\');
}

// What the WHATWG parser does to its input first: strip leading and trailing
// C0 controls and spaces, remove every tab and newline.
function preprocess(input: string): string {
  let start = 0;
  let end = input.length;
  while (start < end && input.charCodeAt(start) <= 0x20) start += 1;
  while (end > start && input.charCodeAt(end - 1) <= 0x20) end -= 1;
  let out = '';
  for (let i = start; i < end; i += 1) {
    const c = input.charAt(i);
    if (c !== '\t' && c !== '\n' && c !== '\r') out += c;
  }
  return out;
}

// The host of an authority component: after the last `@`, up to a `:` that is
// outside IPv6 brackets; percent-decoded and lower-cased as the parser would.
function hostOfAuthority(rest: string, special: boolean): string | undefined {
  let end = 0;
  while (end < rest.length) {
    const c = rest.charAt(end);
    if (c === '/' || c === '?' || c === '#' || (special && c === '\\')) break;
    end += 1;
  }
  const authority = rest.slice(0, end);
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  let inBrackets = false;
  let hostEnd = 0;
  while (hostEnd < hostPort.length) {
    const c = hostPort.charAt(hostEnd);
    if (c === '[') inBrackets = true;
    else if (c === ']') inBrackets = false;
    else if (c === ':' && !inBrackets) break;
    hostEnd += 1;
  }
  try {
    return decodeURIComponent(hostPort.slice(0, hostEnd)).toLowerCase();
  } catch {
    return undefined;
  }
}

function schemeOf(text: string): { scheme: string; rest: string } | undefined {
  const match = SCHEME.exec(text);
  if (match === null) return undefined;
  return { scheme: (match[1] as string).toLowerCase(), rest: text.slice(match[0].length) };
}

/**
 * The raw host text of `input` (lower-case, percent-decoded), resolving a
 * relative reference against `base` (itself raw text) the way the URL parser
 * would. Undefined when it cannot be determined.
 */
export function extractRawHost(input: string, base?: string): string | undefined {
  const text = preprocess(input);
  const own = schemeOf(text);
  const baseParts = base === undefined ? undefined : schemeOf(preprocess(base));

  if (own !== undefined) {
    const special = SPECIAL_SCHEMES.has(own.scheme);
    if (own.scheme === 'file') return undefined;
    if (!special) {
      return own.rest.startsWith('//') ? hostOfAuthority(own.rest.slice(2), false) : '';
    }
    const sameSchemeBase = baseParts !== undefined && baseParts.scheme === own.scheme;
    if (sameSchemeBase && !(isSlash(own.rest[0], true) && isSlash(own.rest[1], true))) {
      // `http:foo` against an http base is a relative path: the host is the base's.
      return extractRawHost(base as string);
    }
    let i = 0;
    while (isSlash(own.rest[i], true)) i += 1;
    return hostOfAuthority(own.rest.slice(i), true);
  }

  // No scheme: a relative reference, meaningful only against a base.
  if (baseParts === undefined || baseParts.scheme === 'file') return undefined;
  const special = SPECIAL_SCHEMES.has(baseParts.scheme);
  if (isSlash(text[0], special) && isSlash(text[1], special)) {
    let i = 0;
    while (special && isSlash(text[i], true)) i += 1;
    return hostOfAuthority(special ? text.slice(i) : text.slice(2), special);
  }
  return extractRawHost(base as string);
}
