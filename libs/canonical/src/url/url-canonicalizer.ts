import type { ResourceFacts } from '@hcp/core';
import { hasControlChar, refusedFacts, resolvedFacts } from '../facts';
import type { RefusalStatus } from '../facts';
import {
  addressText,
  classifyParsed,
  inAllowedCidr,
  parseAllowCidrs,
  parseStrictAddress,
} from './address-classifier';
import { extractRawHost } from './raw-host';
import type { Resolver } from './system-resolver';

/** Every rule the URL canonicaliser can report; stable names the audit and tests key on. */
export const URL_RULES = [
  'url.not_string',
  'url.empty',
  'url.too_long',
  'url.control_char',
  'url.unparsable',
  'url.scheme',
  'url.credentials',
  'url.empty_host',
  'url.numeric_host',
  'url.no_address',
  'url.bad_address',
  'url.ipv4_mapped',
  'url.private_address',
] as const;

/** A URL canonicaliser rule name. */
export type UrlRule = (typeof URL_RULES)[number];

/** Default bound on a raw URL or Location header (a provider's `resources.maxUrlLength`). */
export const DEFAULT_MAX_URL_LENGTH = 8192;

/** The bounds a configured URL length limit must lie within. */
export const URL_LENGTH_LIMIT_BOUNDS = { min: 256, max: 65_536 } as const;

/** Configuration of one provider's network view. */
export interface UrlCanonicalizerOptions {
  /** Host name -> addresses; use `systemResolver` in production, a fake in tests. */
  readonly resolver: Resolver;
  /** Schemes admitted, without the colon; default `['http', 'https']`. */
  readonly allowedSchemes?: readonly string[];
  /**
   * Explicit operator rules admitting otherwise refused addresses (e.g. an
   * internal API at 10.1.0.0/16). Never admits IPv4-mapped IPv6, which is
   * refused outright.
   */
  readonly allowCidrs?: readonly string[];
  /** Admit hosts written as integers, hex, octal or short forms; default false. */
  readonly allowNumericHosts?: boolean;
  /** Longest raw URL accepted; default DEFAULT_MAX_URL_LENGTH, within URL_LENGTH_LIMIT_BOUNDS. */
  readonly maxUrlLength?: number;
}

/**
 * Turns a caller's URL into what the provider will connect to (I3): the
 * WHATWG-normalised URL and every address its host resolves to, each of which
 * must be public unicast. The addresses are a point-in-time answer; a
 * provider should connect to exactly these (pin them) so DNS cannot be
 * rebound between the check and the request.
 */
export interface UrlCanonicalizer {
  /** Never throws; every refusal is a ResourceFacts with a rule from URL_RULES. */
  canonicalize(raw: string): Promise<ResourceFacts>;
  /**
   * Checks one redirect hop: resolves `location` against the URL that
   * answered (`baseUrl`, as it was requested) and runs the full check again.
   * Call it on every hop; a redirect is a new request to a new resource.
   */
  canonicalizeRedirect(location: string, baseUrl: string): Promise<ResourceFacts>;
}

/** Builds a URL canonicaliser; throws at startup on a malformed allowCidrs entry or length limit. */
export function createUrlCanonicalizer(options: UrlCanonicalizerOptions): UrlCanonicalizer {
  const resolver = options.resolver;
  const schemes = new Set(
    (options.allowedSchemes ?? ['http', 'https']).map((s) => s.toLowerCase()),
  );
  const allowRules = parseAllowCidrs(options.allowCidrs ?? []);
  const allowNumeric = options.allowNumericHosts ?? false;
  const maxLength = options.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH;
  const { min, max } = URL_LENGTH_LIMIT_BOUNDS;
  if (!Number.isInteger(maxLength) || maxLength < min || maxLength > max)
    throw new Error(`url canonicaliser: maxUrlLength must be an integer from ${min} to ${max}`);

  const refuse = (
    status: RefusalStatus,
    raw: string,
    rule: UrlRule,
    detail: string,
    canonical?: string,
  ): ResourceFacts => refusedFacts(status, 'url', raw, rule, detail, canonical);

  function checkText(raw: unknown, what: string): ResourceFacts | undefined {
    if (typeof raw !== 'string') {
      return refusedFacts(
        'invalid',
        'url',
        '',
        'url.not_string',
        `${what}: expected a string, got ${typeof raw}`,
      );
    }
    if (raw.length === 0) return refuse('invalid', raw, 'url.empty', `${what} is empty`);
    if (raw.length > maxLength) {
      return refuse(
        'invalid',
        raw,
        'url.too_long',
        `${what}: ${raw.length} characters exceed the limit of ${maxLength}`,
      );
    }
    if (hasControlChar(raw)) {
      return refuse(
        'invalid',
        raw,
        'url.control_char',
        `${what} contains a NUL or control character`,
      );
    }
    return undefined;
  }

  async function check(raw: string, url: URL, rawHost: string | undefined): Promise<ResourceFacts> {
    const scheme = url.protocol.slice(0, -1);
    if (!schemes.has(scheme)) {
      return refuse('denied', raw, 'url.scheme', `scheme ${JSON.stringify(scheme)} is not allowed`);
    }
    if (url.username !== '' || url.password !== '') {
      return refuse('denied', raw, 'url.credentials', 'credentials in the URL are not allowed');
    }
    if (url.hostname === '') return refuse('invalid', raw, 'url.empty_host', 'the URL has no host');

    url.hash = '';
    const canonical = url.href;
    const bracketed = url.hostname.startsWith('[');
    const host = (bracketed ? url.hostname.slice(1, -1) : url.hostname).toLowerCase();
    const literal = parseStrictAddress(host);
    // WHATWG serialises every IPv4 host as dotted decimal, so a four-part
    // literal here is an IPv4 host whatever the caller wrote; compare spelling.
    if (literal !== undefined && !bracketed && !allowNumeric && rawHost !== host) {
      return refuse(
        'denied',
        raw,
        'url.numeric_host',
        `host ${JSON.stringify(rawHost ?? '?')} is a numeric encoding of ${host}`,
        canonical,
      );
    }

    // Typed loosely on purpose: a custom resolver is checked, not trusted.
    let answers: unknown;
    if (literal !== undefined) {
      answers = [host];
    } else {
      try {
        answers = await resolver(host);
      } catch (error: unknown) {
        const why = error instanceof Error ? error.message : 'resolver failed';
        return refuse(
          'unresolvable',
          raw,
          'url.no_address',
          `${host} did not resolve: ${why}`,
          canonical,
        );
      }
      if (!Array.isArray(answers) || answers.length === 0) {
        return refuse('unresolvable', raw, 'url.no_address', `${host} has no addresses`, canonical);
      }
    }

    const addresses: string[] = [];
    for (const answer of answers as readonly unknown[]) {
      const parsed = typeof answer === 'string' ? parseStrictAddress(answer) : undefined;
      if (parsed === undefined) {
        return refuse(
          'denied',
          raw,
          'url.bad_address',
          `${host} resolved to a non-address ${JSON.stringify(String(answer))}`,
          canonical,
        );
      }
      const text = addressText(parsed);
      const verdict = classifyParsed(parsed);
      if (verdict.range === 'ipv4Mapped') {
        return refuse(
          'denied',
          raw,
          'url.ipv4_mapped',
          `${host} -> ${text} is an IPv4-mapped IPv6 address`,
          canonical,
        );
      }
      if (!verdict.allowed && !inAllowedCidr(parsed, allowRules)) {
        return refuse(
          'denied',
          raw,
          'url.private_address',
          `${host} -> ${text} is in range ${verdict.range}`,
          canonical,
        );
      }
      if (!addresses.includes(text)) addresses.push(text);
    }
    // WHATWG drops a special scheme's default port from the URL; policy sees the port used.
    const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
    return resolvedFacts({
      kind: 'url',
      raw,
      canonical,
      host,
      addresses,
      scheme,
      ...(port !== undefined && { port }),
    });
  }

  async function canonicalize(raw: string): Promise<ResourceFacts> {
    const bad = checkText(raw, 'the URL');
    if (bad !== undefined) return bad;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return refuse('invalid', raw, 'url.unparsable', 'not an absolute URL');
    }
    return check(raw, url, extractRawHost(raw));
  }

  async function canonicalizeRedirect(location: string, baseUrl: string): Promise<ResourceFacts> {
    const badLocation = checkText(location, 'the Location');
    if (badLocation !== undefined) return badLocation;
    const badBase = checkText(baseUrl, 'the base URL');
    if (badBase !== undefined && badBase.status !== 'resolved') {
      return refusedFacts('invalid', 'url', location, badBase.rule, badBase.detail);
    }
    let url: URL;
    try {
      url = new URL(location, baseUrl);
    } catch {
      return refuse(
        'invalid',
        location,
        'url.unparsable',
        'the Location does not resolve against the base URL',
      );
    }
    return check(location, url, extractRawHost(location, baseUrl));
  }

  return { canonicalize, canonicalizeRedirect };
}

/** Checks one redirect hop with the full URL rules; call it for every Location a provider follows. */
export function checkRedirect(
  canonicalizer: UrlCanonicalizer,
  location: string,
  baseUrl: string,
): Promise<ResourceFacts> {
  return canonicalizer.canonicalizeRedirect(location, baseUrl);
}

/** The port a URL of a WHATWG special scheme goes to when it names none. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  http: 80,
  https: 443,
  ws: 80,
  wss: 443,
  ftp: 21,
};
