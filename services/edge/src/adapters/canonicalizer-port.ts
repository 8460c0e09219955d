import {
  createIdCanonicalizer,
  createPathCanonicalizer,
  createUrlCanonicalizer,
  refusedFacts,
  systemResolver,
  type PathCanonicalizer,
  type PathIntent,
  type Resolver,
  type UrlCanonicalizer,
} from '@hcp/canonical';
import type { Capability, ResourceFacts } from '@hcp/core';
import type { CanonicalizerPort } from '../call/ports';
import type { ProviderConfig } from '../providers/provider-config';
import type { ProviderRegistry } from '../providers/provider-registry';

/** Options of the canonicaliser port. */
export interface CanonicalizerPortOptions {
  /** Host name -> addresses for URL arguments; default the system resolver (getaddrinfo). */
  readonly resolver?: Resolver;
}

/** The canonicalisers of one provider configuration, built on first use. */
interface ProviderCanonicalizers {
  readonly config: ProviderConfig | undefined;
  path?: Promise<PathCanonicalizer>;
  url?: UrlCanonicalizer;
}

/** A write may name a file that does not exist yet; every other effect needs the path to exist. */
function intentOf(capability: Capability): PathIntent {
  return capability.effects.includes('write') ? 'write' : 'read';
}

/**
 * The canonicaliser port over @hcp/canonical (I3), configured per provider: paths against that
 * provider's `resources.filesystemRoots` (none: every path denied), URLs with its `allowCidrs` and
 * the injected resolver, opaque ids verbatim. Every refusal comes back as facts for the decision
 * point to decide and audit; nothing is thrown.
 */
export function canonicalizerPort(
  configOf: (providerId: string) => ProviderConfig | undefined,
  opts: CanonicalizerPortOptions = {},
): CanonicalizerPort {
  const resolver = opts.resolver ?? systemResolver;
  const ids = createIdCanonicalizer();
  const byProvider = new Map<string, ProviderCanonicalizers>();

  /** The provider's canonicalisers, rebuilt when its configuration object changes (re-registration). */
  function forProvider(providerId: string): ProviderCanonicalizers {
    const config = configOf(providerId);
    const cached = byProvider.get(providerId);
    if (cached !== undefined && cached.config === config) return cached;
    const fresh: ProviderCanonicalizers = { config };
    byProvider.set(providerId, fresh);
    return fresh;
  }

  async function canonicalizePath(capability: Capability, raw: unknown): Promise<ResourceFacts> {
    const entry = forProvider(capability.provider);
    entry.path ??= createPathCanonicalizer({
      roots: entry.config?.resources?.filesystemRoots ?? [],
    });
    let canonicalizer: PathCanonicalizer;
    try {
      canonicalizer = await entry.path;
    } catch (err: unknown) {
      // A root vanished or is not a directory: fail closed for this call, retry on the next.
      entry.path = undefined;
      return refusedFacts(
        'unresolvable',
        'path',
        typeof raw === 'string' ? raw : '',
        'path.io_error',
        `a filesystem root of provider ${capability.provider} is unavailable (${err instanceof Error ? err.message : 'unknown error'})`,
      );
    }
    // The canonicaliser checks the type itself and refuses a non-string as path.not_string.
    return canonicalizer.canonicalize(raw as string, intentOf(capability));
  }

  function urlCanonicalizer(capability: Capability): UrlCanonicalizer {
    const entry = forProvider(capability.provider);
    entry.url ??= createUrlCanonicalizer({
      resolver,
      allowCidrs: entry.config?.resources?.allowCidrs ?? [],
    });
    return entry.url;
  }

  return {
    async canonicalize(capability, args) {
      const argument = capability.resourceArgument;
      if (argument === undefined) return undefined;
      const raw = Object.prototype.hasOwnProperty.call(args, argument.name)
        ? args[argument.name]
        : undefined;
      switch (argument.canonicalizer) {
        case 'path':
          return canonicalizePath(capability, raw);
        case 'url':
          return urlCanonicalizer(capability).canonicalize(raw as string);
        case 'id':
          return ids.canonicalize(raw as string);
      }
    },
  };
}

/** The `configOf` of canonicalizerPort over a ProviderRegistry: undefined for an unregistered provider. */
export function registryConfigOf(
  registry: Pick<ProviderRegistry, 'providerIds' | 'config'>,
): (providerId: string) => ProviderConfig | undefined {
  return (providerId) =>
    registry.providerIds().includes(providerId) ? registry.config(providerId) : undefined;
}
