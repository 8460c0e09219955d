import type { Duplex } from 'node:stream';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createUrlCanonicalizer, systemResolver, type Resolver } from '@hcp/canonical';
import { HcpError, type Capability } from '@hcp/core';
import {
  createAuditPublisher,
  createGrpcClient,
  createLogger,
  createTokenVerifier,
  NestJsonLogger,
  type AuditPublisher,
  type EventBus,
  type TokenVerifier,
  type TokenVerifierOptions,
} from '@hcp/platform';
import { grants, policy, vault } from '@hcp/proto';
import {
  GrantStoreGrants,
  GrantStoreManifest,
  canonicalizerPort,
  grpcApprovalPort,
  grpcDecisionPort,
  grpcVaultPort,
  JsonSchemaArgumentValidator,
  pinnedSchemaSource,
  registryConfigOf,
  registryUpstreamPort,
  type CapabilitySettings,
} from './adapters';
import type { UpstreamPort } from './call/ports';
import {
  startEgressProxy,
  type EgressDialer,
  type EgressRefusal,
  type RunningEgressProxy,
} from './egress/egress-proxy';
import { CachingTokenVerifier, JWKS_KEY_SET_MAX_AGE_MS } from './auth/token-cache';
import { EDGE_GRPC_CHANNEL_OPTIONS } from './adapters/grpc-channel-options';
import { CallService } from './call/call.service';
import { EdgeHttpModule } from './http/edge-http.module';
import { HcpEnforcement, type EnforcementFactory } from './http/enforcement';
import { McpEndpoint } from './http/mcp-endpoint';
import { ListingCache } from './http/tool-catalog';
import { ProtocolState, type ProtocolStateOptions } from './protocol/protocol-state';
import {
  InMemorySessionMarks,
  SignedSessionStore,
  type SessionKey,
  type SessionMarks,
} from './protocol/session-store';
import type { ProviderConfig } from './providers/provider-config';
import { ProviderRegistry, type ListedCapability } from './providers/provider-registry';
import { ListingRefresher } from './providers/listing-refresh';
import { assertResourceArgumentsDeclared } from './providers/resource-arguments';
import type { UpstreamClientOptions } from './providers/upstream-client';

/** A manifest entry as an operator writes it in the edge configuration; the edge adds the pin. */
export type CapabilitySpec = Omit<Capability, 'id' | 'provider' | 'definitionDigest'> & {
  /**
   * Arguments that look like a path or URL (by name or `format`) but are not one, e.g. a search
   * `pattern` named `filePattern`. Every other such argument must be in `resourceArguments`, or
   * the edge refuses to start (see providers/resource-arguments.ts). Never stored in the manifest.
   */
  readonly nonResourceArguments?: readonly string[];
};

/** One upstream provider and the manifest entries of its tools (a tool without one is not callable). */
export interface EdgeProviderSpec {
  readonly config: ProviderConfig;
  readonly capabilities?: readonly CapabilitySpec[];
  /**
   * A URL-fetching stdio provider that follows redirects itself: the edge starts an egress proxy
   * for it and passes `<proxyUrlArg> <proxy url>` to the child, so every request it makes — every
   * redirect hop — is checked against the provider's URL rules (I3), not just the first URL.
   */
  readonly egress?: { readonly proxyUrlArg: string; readonly dial?: EgressDialer };
}

/** Everything startEdge needs; main.ts builds it from the environment, tests directly. */
export interface StartEdgeOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** HTTP port of /mcp; 0 picks a free one. */
  readonly port: number;
  readonly grantStoreUrl: string;
  readonly pdpUrl: string;
  readonly vaultUrl: string;
  /** The bus the audit stream lives on (and grants.changed arrives on). */
  readonly bus: EventBus;
  /** The publisher the edge records its own entries through; default one it creates (and closes). */
  readonly audit?: AuditPublisher;
  readonly verifier: TokenVerifier | TokenVerifierOptions;
  /** HMAC keys of the signed session ids; the first signs. Every replica needs the same keys. */
  readonly sessionKeys: readonly SessionKey[];
  /** Where initialized/ended session marks live; default in memory (one replica). */
  readonly sessionMarks?: SessionMarks;
  readonly providers: readonly EdgeProviderSpec[];
  /** Edge-side settings per capability id (inline preview, sensitivity label). */
  readonly capabilitySettings?: Readonly<Record<string, CapabilitySettings>>;
  /**
   * Builds another enforcement than hcp from the edge's parts: a measurement baseline or an
   * ablation. Only the benchmark's composition root passes one; main.ts never does, and no
   * configuration variable reaches it.
   */
  readonly enforcement?: EnforcementFactory;
  readonly protocol?: Omit<ProtocolStateOptions, 'store'>;
  readonly upstream?: UpstreamClientOptions;
  /** Bound on publishing an invocation's audit entry before its output is released; default 2 s. */
  readonly auditPublishTimeoutMs?: number;
  /**
   * Overrides every provider's `relistIntervalMs` (default 60 s each); 0 turns the periodic
   * re-list off (tests and the benchmark call relist() themselves). Announced changes
   * (`notifications/tools/list_changed`) are acted on either way.
   */
  readonly relistIntervalMs?: number;
  /** DNS resolver for URL canonicalisation (tests inject one); default the system resolver. */
  readonly resolver?: Resolver;
}

/** A running edge. */
export interface RunningEdge {
  readonly port: number;
  /** `http://host:port/mcp`. */
  readonly url: string;
  readonly registry: ProviderRegistry;
  readonly listings: ListingCache;
  readonly audit: AuditPublisher;
  /** Lists every provider again, updating what tools/list shows and the observed digests (I1). */
  relist(): Promise<void>;
  /** The re-list mechanism: `toolsChanged` marks a provider stale, `relist(id)` lists one again. */
  readonly refresher: ListingRefresher;
  close(): Promise<void>;
}

const log = createLogger('Edge');

function isVerifier(v: TokenVerifier | TokenVerifierOptions): v is TokenVerifier {
  return typeof (v as Partial<TokenVerifier>).verify === 'function';
}

/**
 * Starts the edge: connects the providers, pins their tool definitions into the grant-store
 * manifest (first registration only; a changed definition is never re-pinned silently), and
 * serves /mcp. Nothing is half-started: on any failure everything opened so far is closed.
 */
export async function startEdge(options: StartEdgeOptions): Promise<RunningEdge> {
  const host = options.host ?? '127.0.0.1';
  // The verifier the edge builds itself is fronted by the token cache (ADR 0005 §3); one handed
  // in is used as given.
  const verifier = isVerifier(options.verifier)
    ? options.verifier
    : new CachingTokenVerifier(createTokenVerifier(options.verifier), {
        ...(options.verifier.jwksUrl ? { maxEntryMs: JWKS_KEY_SET_MAX_AGE_MS } : {}),
      });
  const listings = new ListingCache();
  // One mechanism keeps listings in step with the upstreams: signs of change reported by the
  // registry's connections, and each provider's periodic re-list (I1).
  const refresher: ListingRefresher = new ListingRefresher({
    registry: {
      list: (id) => registry.list(id),
      providerIds: () => registry.providerIds(),
      config: (id) => registry.config(id),
    },
    listings,
    pins: async () =>
      new Map(
        (await manifest.all()).flatMap((c) =>
          c.capability.definitionDigest === undefined
            ? []
            : [[c.capability.id, c.capability.definitionDigest] as const],
        ),
      ),
    ...(options.relistIntervalMs === undefined ? {} : { intervalMs: options.relistIntervalMs }),
  });
  const registry: ProviderRegistry = new ProviderRegistry(options.upstream ?? {}, {
    onToolsChanged: refresher.toolsChanged,
  });
  const ownsAudit = options.audit === undefined;
  const audit = options.audit ?? (await createAuditPublisher(options.bus, { source: 'edge' }));
  const grantClient = createGrpcClient(
    grants.GrantStoreClient,
    options.grantStoreUrl,
    EDGE_GRPC_CHANNEL_OPTIONS,
  );
  const pdpClient = createGrpcClient(
    policy.PolicyDecisionClient,
    options.pdpUrl,
    EDGE_GRPC_CHANNEL_OPTIONS,
  );
  const vaultClient = createGrpcClient(
    vault.HandleVaultClient,
    options.vaultUrl,
    EDGE_GRPC_CHANNEL_OPTIONS,
  );
  const manifest = new GrantStoreManifest(grantClient, {
    settings: options.capabilitySettings ?? {},
    bus: options.bus,
  });
  const grantsOf = new GrantStoreGrants(grantClient, { bus: options.bus });
  let app: NestExpressApplication | undefined;
  let endpoint: McpEndpoint | undefined;
  const proxies: RunningEgressProxy[] = [];
  const egress = new Map<string, EgressWindows>();
  const cleanup = async () => {
    refresher.close();
    await endpoint?.shutdown();
    await app?.close().catch((err: unknown) => log.error({ err }, 'http close failed'));
    await registry.closeAll();
    for (const proxy of proxies) await proxy.close();
    await manifest.close?.();
    await grantsOf.close?.();
    if (ownsAudit)
      await audit.close().catch((err: unknown) => log.error({ err }, 'audit close failed'));
    grantClient.close();
    pdpClient.close();
    vaultClient.close();
  };
  try {
    for (const spec of options.providers) {
      let config = spec.config;
      if (spec.egress !== undefined) {
        if (config.transport.kind !== 'stdio')
          throw new HcpError(
            'INPUT_INVALID',
            `provider ${config.id}: egress needs a stdio provider`,
          );
        const windows = new EgressWindows(config.id);
        egress.set(config.id, windows);
        const proxy = await startEgressProxy({
          providerId: config.id,
          canonicalizer: createUrlCanonicalizer({
            resolver: options.resolver ?? systemResolver,
            allowCidrs: config.resources?.allowCidrs ?? [],
            ...(config.resources?.maxUrlLength === undefined
              ? {}
              : { maxUrlLength: config.resources.maxUrlLength }),
          }),
          onRefusal: (event) => windows.refused(event),
          ...(spec.egress.dial === undefined ? {} : { dial: spec.egress.dial }),
        });
        proxies.push(proxy);
        config = {
          ...config,
          transport: {
            ...config.transport,
            args: [...(config.transport.args ?? []), spec.egress.proxyUrlArg, proxy.url],
          },
        };
      }
      // Taken before connecting: a change announced while registering keeps the listing stale.
      const requestedAt = listings.epoch(config.id);
      const listing = await registry.register(config);
      listings.update(listing, requestedAt);
      if (listing.rejected.length > 0)
        log.warn({ provider: spec.config.id, rejected: listing.rejected }, 'tools not exposed');
      await pinCapabilities(manifest, spec, listing.capabilities);
      refresher.registered(config.id);
    }

    const protocol = new ProtocolState({
      ...(options.protocol ?? {}),
      store: new SignedSessionStore({
        keys: options.sessionKeys,
        marks: options.sessionMarks ?? new InMemorySessionMarks(),
      }),
    });
    const upstream = egressAware(registryUpstreamPort(registry), egress);
    const calls = new CallService({
      decision: grpcDecisionPort(pdpClient),
      vault: grpcVaultPort(vaultClient),
      upstream,
      canonicalizer: canonicalizerPort(
        registryConfigOf(registry),
        options.resolver === undefined ? {} : { resolver: options.resolver },
      ),
      validator: new JsonSchemaArgumentValidator(pinnedSchemaSource((id) => listings.get(id))),
      definitions: { current: (id) => listings.get(id)?.digest },
      manifest,
      approvals: grpcApprovalPort(grantClient),
      audit,
      auditDurability: {
        recordDurable: (entry) => audit.recordDurable(entry, options.auditPublishTimeoutMs ?? 2000),
        flush: () => audit.flush(options.auditPublishTimeoutMs ?? 2000),
      },
    });
    const enforced = { protocol, calls, listings, manifest, grants: grantsOf, audit };
    const hcp = new HcpEnforcement(enforced);
    const enforcement = options.enforcement?.({ hcp, protocol, listings, upstream }) ?? hcp;
    endpoint = new McpEndpoint({ ...enforced, verifier, enforcement });
    app = await NestFactory.create<NestExpressApplication>(
      EdgeHttpModule.forRoot({
        endpoint,
        ready: () => {
          if (!audit.available()) return Promise.resolve('audit publisher over its bound');
          if (!options.bus.isConnected()) return Promise.resolve('event bus disconnected');
          return Promise.resolve(undefined);
        },
      }),
      { logger: new NestJsonLogger(), bodyParser: false },
    );
    app.disable('x-powered-by');
    const mcp = endpoint;
    // Requests Node's parser refuses (oversized headers, malformed lines) get the typed refusal too.
    app
      .getHttpServer()
      .on('clientError', (err: Error, socket: Duplex) => mcp.answerClientError(err, socket));
    app.enableShutdownHooks();
    await app.listen(options.port, host);
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    const url = `http://${host}:${port}/mcp`;
    log.info(
      {
        url,
        enforcement: enforcement.label,
        ablations: enforcement.ablations,
        providers: registry.providerIds(),
      },
      'edge serving',
    );
    return {
      port,
      url,
      registry,
      listings,
      audit,
      relist: () => refresher.relistAll(),
      refresher,
      close: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Writes the pins of a provider's manifest entries. A capability the manifest does not hold yet
 * (or holds without a pin) is pinned to the definition listed now; one pinned to another digest
 * keeps its pin — the tool stays uncallable (TOOL_DEFINITION_CHANGED) until an operator re-approves.
 * An entry that leaves a path- or URL-looking argument of the listed tool undeclared refuses
 * startup (HcpError INPUT_INVALID naming provider, tool and argument).
 */
async function pinCapabilities(
  manifest: GrantStoreManifest,
  spec: EdgeProviderSpec,
  listed: readonly ListedCapability[],
): Promise<void> {
  const providerId = spec.config.id;
  for (const { nonResourceArguments, ...cap } of spec.capabilities ?? []) {
    const id = `${providerId}/${cap.tool}`;
    const current = listed.find((l) => l.capabilityId === id);
    if (current === undefined) {
      log.warn({ capability: id }, 'manifest names a tool the provider does not list; not pinned');
      continue;
    }
    assertResourceArgumentsDeclared(
      providerId,
      { ...cap, ...(nonResourceArguments === undefined ? {} : { nonResourceArguments }) },
      current.tool,
    );
    const existing = (await manifest.capability(id))?.capability;
    const pin = existing?.definitionDigest;
    if (pin !== undefined && pin !== '' && pin !== current.digest) {
      log.warn(
        { capability: id, pinned: pin, current: current.digest },
        'tool definition differs from its pin: uncallable (TOOL_DEFINITION_CHANGED) until re-approved',
      );
      continue;
    }
    await manifest.put({ ...cap, id, provider: providerId, definitionDigest: current.digest });
  }
}

/**
 * Ties egress-proxy refusals to the calls in flight on that provider: a call during which the
 * proxy refused a request (e.g. a redirect to a private address) fails with the refusal's reason
 * instead of returning the provider's error text. With several calls in flight each of them
 * fails — the proxy cannot tell whose request it was — which over-refuses but never under-refuses.
 */
class EgressWindows {
  private readonly open = new Set<EgressRefusal[]>();

  constructor(private readonly providerId: string) {}

  begin(): EgressRefusal[] {
    const window: EgressRefusal[] = [];
    this.open.add(window);
    return window;
  }

  end(window: EgressRefusal[]): void {
    this.open.delete(window);
  }

  refused(event: EgressRefusal): void {
    log.warn(
      { provider: this.providerId, rule: event.rule, url: event.canonical ?? event.rawUrl },
      'egress refused',
    );
    for (const window of this.open) window.push(event);
  }
}

function egressAware(
  upstream: UpstreamPort,
  egress: ReadonlyMap<string, EgressWindows>,
): UpstreamPort {
  if (egress.size === 0) return upstream;
  return {
    async callTool(capabilityId, args) {
      const windows = egress.get(capabilityId.slice(0, capabilityId.indexOf('/')));
      if (windows === undefined) return upstream.callTool(capabilityId, args);
      const window = windows.begin();
      try {
        const result = await upstream.callTool(capabilityId, args);
        const refusal = window[0];
        if (refusal !== undefined) {
          throw new HcpError(
            refusal.reason,
            `${capabilityId}: the egress proxy refused ${refusal.canonical ?? refusal.rawUrl} (${refusal.rule})`,
            { rule: refusal.rule },
          );
        }
        return result;
      } finally {
        windows.end(window);
      }
    },
  };
}
