import {
  createIdCanonicalizer,
  createPathCanonicalizer,
  createUrlCanonicalizer,
  DEFAULT_MAX_ID_LENGTH,
  DEFAULT_MAX_PATH_LENGTH,
  DEFAULT_MAX_URL_LENGTH,
  refusedFacts,
  systemResolver,
  type PathCanonicalizer,
  type PathIntent,
  type Resolver,
  type UrlCanonicalizer,
} from '@hcp/canonical';
import type {
  ArgumentResource,
  Capability,
  ResourceArgument,
  ResourceFacts,
  ResourceKind,
} from '@hcp/core';
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

/** Most elements an array resource argument (`many`) may carry; more is one `invalid` fact. */
export const MAX_RESOURCES_PER_ARGUMENT = 64;

/** A destination (role `write`) may name a path that does not exist yet; every other path must exist. */
function intentOf(argument: ResourceArgument): PathIntent {
  return argument.role === 'write' ? 'write' : 'read';
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

  async function canonicalizePath(
    capability: Capability,
    argument: ResourceArgument,
    raw: unknown,
  ): Promise<ResourceFacts> {
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
    return canonicalizer.canonicalize(raw as string, intentOf(argument));
  }

  function urlCanonicalizer(capability: Capability): UrlCanonicalizer {
    const entry = forProvider(capability.provider);
    entry.url ??= createUrlCanonicalizer({
      resolver,
      allowCidrs: entry.config?.resources?.allowCidrs ?? [],
      maxUrlLength: entry.config?.resources?.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH,
    });
    return entry.url;
  }

  /** One value of one argument; a canonicaliser that throws is that value's `unresolvable` fact. */
  async function canonicalizeOne(
    capability: Capability,
    argument: ResourceArgument,
    raw: unknown,
  ): Promise<ResourceFacts> {
    try {
      switch (argument.canonicalizer) {
        case 'path':
          return await canonicalizePath(capability, argument, raw);
        case 'url':
          return await urlCanonicalizer(capability).canonicalize(raw as string);
        case 'id':
          return ids.canonicalize(raw as string);
      }
    } catch (err: unknown) {
      return thrownFacts(argument, raw, err);
    }
  }

  return {
    async canonicalize(capability, args) {
      const facts: ArgumentResource[] = [];
      for (const argument of capability.resourceArguments) {
        // Absent: no fact, and the decision point answers INPUT_INVALID (missing argument).
        if (!Object.prototype.hasOwnProperty.call(args, argument.name)) continue;
        const raw = args[argument.name];
        if (argument.many !== true) {
          facts.push({
            argument: argument.name,
            index: 0,
            facts: await canonicalizeOne(capability, argument, raw),
          });
          continue;
        }
        const refused = arrayRefusal(argument, raw);
        if (refused !== undefined) {
          facts.push({ argument: argument.name, index: 0, facts: refused });
          continue;
        }
        const values = raw as readonly unknown[];
        const decided = await Promise.all(
          values.map((value) => canonicalizeOne(capability, argument, value)),
        );
        decided.forEach((f, index) => facts.push({ argument: argument.name, index, facts: f }));
      }
      return facts;
    },
    maxRawLength(capability, kind: ResourceKind) {
      switch (kind) {
        case 'path':
          return DEFAULT_MAX_PATH_LENGTH;
        case 'url':
          return configOf(capability.provider)?.resources?.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH;
        case 'id':
          return DEFAULT_MAX_ID_LENGTH;
      }
    },
  };
}

/**
 * Why an array argument (`many`) cannot be decided element by element, as one `invalid` fact:
 * not an array, empty, longer than MAX_RESOURCES_PER_ARGUMENT, or holding a non-string. Never
 * skipped: the decision point refuses it (INPUT_INVALID) and the audit names the rule.
 */
function arrayRefusal(argument: ResourceArgument, raw: unknown): ResourceFacts | undefined {
  const refuse = (rule: string, detail: string) =>
    refusedFacts('invalid', argument.canonicalizer, '', rule, `${argument.name}: ${detail}`);
  if (!Array.isArray(raw)) return refuse('resource.not_array', 'must be an array');
  if (raw.length === 0) return refuse('resource.empty_array', 'must name at least one resource');
  if (raw.length > MAX_RESOURCES_PER_ARGUMENT)
    return refuse(
      'resource.too_many',
      `${raw.length} elements exceed the limit of ${MAX_RESOURCES_PER_ARGUMENT}`,
    );
  const at = raw.findIndex((v) => typeof v !== 'string');
  if (at !== -1) return refuse('resource.not_string', `element ${at} is not a string`);
  return undefined;
}

/** A canonicaliser that threw: the value is unresolvable (fail closed), the call is still decided. */
export function thrownFacts(argument: ResourceArgument, raw: unknown, err: unknown): ResourceFacts {
  return refusedFacts(
    'unresolvable',
    argument.canonicalizer,
    typeof raw === 'string' ? raw.slice(0, 256) : '',
    'canonicalizer.error',
    err instanceof Error ? err.message : 'the canonicaliser failed',
  );
}

/** The `configOf` of canonicalizerPort over a ProviderRegistry: undefined for an unregistered provider. */
export function registryConfigOf(
  registry: Pick<ProviderRegistry, 'providerIds' | 'config'>,
): (providerId: string) => ProviderConfig | undefined {
  return (providerId) =>
    registry.providerIds().includes(providerId) ? registry.config(providerId) : undefined;
}
