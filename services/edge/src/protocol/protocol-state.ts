import { PROTOCOL_JSON_RPC_CODES as CODES, protocolError } from './protocol-error';
import type { ProtocolRequest, ProtocolStateStrategy, ProtocolVerdict } from './protocol-request';
import { SessionProtocolStrategy } from './session-strategy';
import type { SessionStore } from './session-store';
import { STATELESS_REVISION_VERSION, StatelessProtocolStrategy } from './stateless-strategy';

export type {
  ProtocolHeaders,
  ProtocolRequest,
  ProtocolStateStrategy,
  ProtocolVerdict,
} from './protocol-request';

/**
 * The session-based revisions the edge speaks, preferred first. The SDK's own
 * SUPPORTED_PROTOCOL_VERSIONS also lists 2024-11-05 and 2024-10-07; those predate Streamable
 * HTTP (they used HTTP+SSE), so the edge, which only serves Streamable HTTP, does not offer them.
 * A spec test keeps this list a subset of the SDK's.
 */
export const DEFAULT_SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = [
  '2025-11-25',
  '2025-06-18',
  '2025-03-26',
];

/** Configuration of the protocol-state component. */
export interface ProtocolStateOptions {
  readonly store: SessionStore;
  /** Session-based versions, preferred first; default DEFAULT_SUPPORTED_PROTOCOL_VERSIONS. */
  readonly supportedVersions?: readonly string[];
  /**
   * initialize asking for a version we do not support: `reject` (default; I8's typed error,
   * -32602 with the supported list, as the spec's error example) or `negotiate` (answer with our
   * preferred version and let the client decide, as the lifecycle text allows).
   */
  readonly unsupportedInitializeVersion?: 'reject' | 'negotiate';
  /**
   * Require MCP-Protocol-Version on every request of a session negotiated at 2025-06-18 or later.
   * Default false: the spec lets a server fall back to the negotiated version when it is absent.
   */
  readonly requireVersionHeader?: boolean;
  /** The 2026-07-28 stateless revision; off by default (the SDK does not speak it yet). */
  readonly statelessRevision?: {
    readonly enabled: boolean;
    /** default [STATELESS_REVISION_VERSION] */
    readonly supportedVersions?: readonly string[];
    /** The `_meta` key carrying the version; default STATELESS_META_VERSION_KEY. */
    readonly metaVersionKey?: string;
  };
}

/**
 * The single component that turns an MCP request's protocol facts into SessionFacts or a typed
 * protocol error (I8), for every revision the edge speaks. It holds no state of its own.
 */
export class ProtocolState {
  private readonly strategies: readonly ProtocolStateStrategy[];
  private readonly store: SessionStore;

  constructor(options: ProtocolStateOptions) {
    this.store = options.store;
    const versions = options.supportedVersions ?? DEFAULT_SUPPORTED_PROTOCOL_VERSIONS;
    if (versions.length === 0) throw new Error('protocol state: no supported versions');
    const session = new SessionProtocolStrategy({
      store: options.store,
      supportedVersions: versions,
      unsupportedInitializeVersion: options.unsupportedInitializeVersion ?? 'reject',
      requireVersionHeader: options.requireVersionHeader ?? false,
    });
    const stateless = options.statelessRevision;
    this.strategies =
      stateless?.enabled === true
        ? [
            new StatelessProtocolStrategy({
              supportedVersions: stateless.supportedVersions ?? [STATELESS_REVISION_VERSION],
              ...(stateless.metaVersionKey !== undefined
                ? { metaVersionKey: stateless.metaVersionKey }
                : {}),
            }),
            session,
          ]
        : [session];
  }

  /** Reads only; the caller handles the request, then calls openSession/settle for lifecycle. */
  async evaluate(request: ProtocolRequest): Promise<ProtocolVerdict> {
    const strategy = this.strategies.find((s) => s.claims(request)) ?? this.strategies.at(-1)!;
    const principalId = request.principalId;
    if (principalId === undefined || principalId === '') {
      return {
        kind: 'refuse',
        revision: strategy.revision,
        session: { state: 'none', initialized: false },
        error: protocolError(
          'PRINCIPAL_UNAUTHENTICATED',
          CODES.BAD_REQUEST,
          401,
          'no authenticated principal',
        ),
      };
    }
    return strategy.evaluate({ ...request, principalId });
  }

  /** Mints the session for an accepted initialize; the id goes into the Mcp-Session-Id header. */
  openSession(principalId: string, negotiatedVersion: string): Promise<string> {
    return this.store.create(principalId, negotiatedVersion);
  }

  /** Records a lifecycle step (notifications/initialized, DELETE) after the request was handled. */
  async settle(verdict: ProtocolVerdict): Promise<void> {
    if (verdict.kind !== 'proceed' || verdict.sessionId === undefined) return;
    switch (verdict.lifecycle) {
      case 'none':
        return;
      case 'initialized':
        return this.store.markInitialized(verdict.sessionId);
      case 'end':
        return this.store.end(verdict.sessionId);
    }
  }
}
