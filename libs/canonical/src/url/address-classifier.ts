import ipaddr from 'ipaddr.js';
import type { IPv4, IPv6 } from 'ipaddr.js';

/** A parsed IPv4 or IPv6 address as ipaddr.js models it. */
export type IpAddress = IPv4 | IPv6;

/** What the classifier concluded about one address. */
export interface AddressClass {
  /** True only for globally routable unicast; everything else fails closed. */
  readonly allowed: boolean;
  /**
   * The ipaddr.js range name (`unicast`, `private`, `loopback`, `linkLocal`,
   * `uniqueLocal`, `ipv4Mapped`, `rfc6052`, ...), or one of ours: `invalid`
   * (not a strict address literal), `nonGlobal` (IPv6 outside 2000::/3),
   * `zoned` (an otherwise global address carrying a zone id).
   */
  readonly range: string;
}

// IANA's global unicast allocation. ipaddr.js calls everything it has no name
// for `unicast`, including the deprecated IPv4-compatible ::a.b.c.d (::/96),
// so IPv6 must also sit in 2000::/3 to count as public.
const IPV6_GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

/**
 * Parses only strict literals: four-part dotted decimal for IPv4 (no octal,
 * hex or short forms, which inet_aton and ipaddr.js would otherwise reinterpret)
 * and standard IPv6 text. Undefined for anything else.
 */
export function parseStrictAddress(text: string): IpAddress | undefined {
  if (typeof text !== 'string' || text.length > 64) return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return undefined;
}

function isV4(address: IpAddress): address is IPv4 {
  return address.kind() === 'ipv4';
}

/** Classifies a parsed address; the url canonicaliser's single source of truth for "public". */
export function classifyParsed(address: IpAddress): AddressClass {
  if (isV4(address)) {
    const range = address.range();
    return { allowed: range === 'unicast', range };
  }
  const range = address.range();
  if (range !== 'unicast') return { allowed: false, range };
  if (!address.match(IPV6_GLOBAL_UNICAST)) return { allowed: false, range: 'nonGlobal' };
  if (address.zoneId !== undefined) return { allowed: false, range: 'zoned' };
  return { allowed: true, range };
}

/**
 * Classifies one address literal: allowed only when it is public unicast.
 * Loopback, RFC 1918, link-local (incl. 169.254.169.254), CGNAT, 0/8, ULA
 * (incl. fd00:ec2::254), IPv4-mapped, NAT64, 6to4, Teredo, multicast,
 * broadcast, documentation and reserved ranges are all refused.
 */
export function classifyAddress(addr: string): AddressClass {
  const parsed = parseStrictAddress(addr);
  return parsed === undefined ? { allowed: false, range: 'invalid' } : classifyParsed(parsed);
}

/** A CIDR an operator explicitly allowed (e.g. an internal API range). */
export type AllowedCidr = readonly [IpAddress, number];

/** Parses operator CIDR rules at startup; throws so a typo fails fast instead of widening silently. */
export function parseAllowCidrs(cidrs: readonly string[]): AllowedCidr[] {
  return cidrs.map((cidr) => {
    if (!ipaddr.isValidCIDR(cidr))
      throw new Error(`allowCidrs entry ${JSON.stringify(cidr)} is not a CIDR`);
    return ipaddr.parseCIDR(cidr);
  });
}

/** True when `address` lies in one of the explicit allow rules (same family only). */
export function inAllowedCidr(address: IpAddress, rules: readonly AllowedCidr[]): boolean {
  return rules.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits));
}

/** The normalised text of an address: dotted decimal, or RFC 5952 IPv6 (with its zone, if any). */
export function addressText(address: IpAddress): string {
  return address.toString();
}
