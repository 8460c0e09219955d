import { lookup } from 'node:dns/promises';

/** Resolves a host name to every address it has; the one I/O seam of URL canonicalisation. */
export type Resolver = (host: string) => Promise<readonly string[]>;

/**
 * The default resolver: the system's getaddrinfo through dns.lookup, all
 * addresses in the order the system returns them — the same answer the
 * provider's own HTTP client would get on this host.
 */
export const systemResolver: Resolver = async (host) => {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => a.address);
};
