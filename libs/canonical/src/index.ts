export { refusedFacts, resolvedFacts, MAX_RAW_IN_FACTS } from './facts';
export type { RefusalStatus } from './facts';

export {
  createPathCanonicalizer,
  DEFAULT_MAX_PATH_LENGTH,
  PATH_RULES,
} from './path/path-canonicalizer';
export type {
  PathCanonicalizer,
  PathCanonicalizerOptions,
  PathIntent,
  PathRule,
} from './path/path-canonicalizer';
export { nodePathFs } from './path/path-fs';
export type { PathFs } from './path/path-fs';
export { containingRoot, isWithinRoot } from './path/containment';

export {
  checkRedirect,
  createUrlCanonicalizer,
  DEFAULT_MAX_URL_LENGTH,
  URL_LENGTH_LIMIT_BOUNDS,
  URL_RULES,
} from './url/url-canonicalizer';
export type { UrlCanonicalizer, UrlCanonicalizerOptions, UrlRule } from './url/url-canonicalizer';
export { classifyAddress } from './url/address-classifier';
export type { AddressClass } from './url/address-classifier';
export { systemResolver } from './url/system-resolver';
export type { Resolver } from './url/system-resolver';

export { createIdCanonicalizer, DEFAULT_MAX_ID_LENGTH, ID_RULES } from './id/id-canonicalizer';
export type { IdCanonicalizer, IdCanonicalizerOptions, IdRule } from './id/id-canonicalizer';
