import type { SessionFacts } from '@hcp/core';
import { PROTOCOL_JSON_RPC_CODES as CODES, batchRefused, protocolError } from './protocol-error';
import type { ProtocolError, ProtocolRevision } from './protocol-error';
import { refusesBatches, singleHeader } from './protocol-request';
import type { ProtocolRequest, ProtocolStateStrategy, ProtocolVerdict } from './protocol-request';
import type { SessionStore } from './session-store';

/** The MCP session header (Streamable HTTP, 2025-03-26 and later). */
export const SESSION_HEADER = 'mcp-session-id';
/** The per-request version header (2025-06-18 and later; 2025-03-26 clients omit it). */
export const VERSION_HEADER = 'mcp-protocol-version';
/** The first revision whose clients must send MCP-Protocol-Version after initialize. */
const VERSION_HEADER_SINCE = '2025-06-18';
/** What a client may send between initialize and notifications/initialized (lifecycle spec). */
const ALLOWED_BEFORE_INITIALIZED: ReadonlySet<string> = new Set([
  'notifications/initialized',
  'ping',
]);

/** Configuration of the session strategy; ProtocolState fills in the defaults. */
export interface SessionProtocolStrategyOptions {
  readonly store: SessionStore;
  readonly supportedVersions: readonly string[];
  readonly unsupportedInitializeVersion: 'reject' | 'negotiate';
  readonly requireVersionHeader: boolean;
}

type Request = ProtocolRequest & { readonly principalId: string };

/**
 * Protocol state for the session-based revisions (2025-03-26, 2025-06-18, 2025-11-25): initialize
 * mints a session bound to the principal, every later request carries Mcp-Session-Id and (since
 * 2025-06-18) MCP-Protocol-Version. Checks run in the engine's order (docs/policy.md): the
 * session's owner before its state, so a foreign id reveals nothing about its lifecycle.
 */
export class SessionProtocolStrategy implements ProtocolStateStrategy {
  readonly revision: ProtocolRevision = '2025-sessions';
  private readonly versions: ReadonlySet<string>;

  constructor(private readonly options: SessionProtocolStrategyOptions) {
    this.versions = new Set(options.supportedVersions);
  }

  /** The fallback strategy: everything that no newer revision claims is a session request. */
  claims(): boolean {
    return true;
  }

  async evaluate(request: Request): Promise<ProtocolVerdict> {
    const sessionHeader = singleHeader(request.headers, SESSION_HEADER);
    const versionHeader = singleHeader(request.headers, VERSION_HEADER);
    const requestVersion = versionHeader.value;
    const noSession: SessionFacts = {
      state: 'none',
      initialized: false,
      ...(requestVersion !== undefined ? { requestVersion } : {}),
    };
    if (sessionHeader.duplicated || versionHeader.duplicated) {
      const which = sessionHeader.duplicated ? 'Mcp-Session-Id' : 'MCP-Protocol-Version';
      return this.refuse(
        noSession,
        protocolError('INPUT_INVALID', CODES.INVALID_REQUEST, 400, `${which} given more than once`),
      );
    }

    const method = request.httpMethod === 'POST' ? request.message?.method : undefined;
    if (method === 'initialize') return this.initialize(request, sessionHeader.value, noSession);

    const sessionId = sessionHeader.value;
    if (sessionId === undefined || sessionId === '') {
      // A client speaking a revision we do not offer (e.g. 2026-07-28 while that strategy is off)
      // learns that, with the list to fall back to, rather than being told to initialize.
      if (requestVersion !== undefined && !this.versions.has(requestVersion))
        return this.refuse(noSession, this.unsupportedHeader(requestVersion));
      return this.refuse(
        noSession,
        protocolError(
          'SESSION_NOT_INITIALIZED',
          CODES.BAD_REQUEST,
          400,
          'no Mcp-Session-Id: send initialize first',
        ),
      );
    }

    const record = await this.options.store.get(sessionId);
    if (record.state === 'unknown') {
      return this.refuse(
        { ...noSession, state: 'unknown' },
        protocolError('SESSION_UNKNOWN', CODES.SESSION_NOT_FOUND, 404, 'session not found'),
      );
    }
    const negotiated = record.negotiatedVersion;
    const facts: SessionFacts = {
      state: record.state,
      initialized: record.initialized,
      ...(record.sid !== undefined ? { id: record.sid } : {}),
      ...(record.ownerPrincipalId !== undefined
        ? { ownerPrincipalId: record.ownerPrincipalId }
        : {}),
      ...(negotiated !== undefined ? { negotiatedVersion: negotiated } : {}),
      // Without the header the spec has the server rely on the negotiated version.
      ...((requestVersion ?? negotiated) !== undefined
        ? { requestVersion: (requestVersion ?? negotiated)! }
        : {}),
    };

    // I4 before I8: a foreign session is refused before anything about its state is told.
    if (record.ownerPrincipalId !== request.principalId) {
      return this.refuse(
        facts,
        protocolError(
          'SESSION_FOREIGN',
          CODES.SESSION_NOT_FOUND,
          404,
          'session belongs to another principal',
        ),
      );
    }
    switch (record.state) {
      case 'expired':
        return this.refuse(
          facts,
          protocolError('SESSION_EXPIRED', CODES.SESSION_NOT_FOUND, 404, 'session expired'),
        );
      case 'ended':
        return this.refuse(
          facts,
          protocolError('SESSION_UNKNOWN', CODES.SESSION_NOT_FOUND, 404, 'session ended'),
        );
      case 'active':
        break;
    }

    const isDelete = request.httpMethod === 'DELETE';
    const mayPrecedeInitialized =
      isDelete || (typeof method === 'string' && ALLOWED_BEFORE_INITIALIZED.has(method));
    if (!record.initialized && !mayPrecedeInitialized) {
      return this.refuse(
        facts,
        protocolError(
          'SESSION_NOT_INITIALIZED',
          CODES.BAD_REQUEST,
          400,
          'initialize has not completed: send notifications/initialized first',
        ),
      );
    }

    const versionError = this.checkVersion(requestVersion, negotiated);
    if (versionError !== undefined) return this.refuse(facts, versionError);
    if (request.batch === true && refusesBatches(negotiated!))
      return this.refuse(facts, batchRefused(negotiated!));

    return {
      kind: 'proceed',
      revision: this.revision,
      session: facts,
      lifecycle: isDelete ? 'end' : method === 'notifications/initialized' ? 'initialized' : 'none',
      sessionId,
    };
  }

  private initialize(
    request: Request,
    sessionId: string | undefined,
    noSession: SessionFacts,
  ): ProtocolVerdict {
    if (sessionId !== undefined) {
      return this.refuse(
        noSession,
        protocolError(
          'INPUT_INVALID',
          CODES.INVALID_REQUEST,
          400,
          'initialize must not carry Mcp-Session-Id',
        ),
      );
    }
    const params = request.message?.params;
    const requested =
      typeof params === 'object' && params !== null
        ? (params as Record<string, unknown>)['protocolVersion']
        : undefined;
    const supported = this.options.supportedVersions;
    let negotiatedVersion: string;
    if (typeof requested === 'string' && this.versions.has(requested)) {
      negotiatedVersion = requested;
    } else if (this.options.unsupportedInitializeVersion === 'negotiate') {
      negotiatedVersion = supported[0]!;
    } else {
      return this.refuse(
        noSession,
        protocolError(
          'PROTOCOL_VERSION_UNSUPPORTED',
          CODES.INVALID_PARAMS,
          // A JSON-RPC answer to a well-formed request: HTTP 200, so SDK clients see code and data.
          200,
          'unsupported protocol version',
          { supported, requested: typeof requested === 'string' ? requested : String(requested) },
        ),
      );
    }
    const header = noSession.requestVersion;
    if (header !== undefined && !this.versions.has(header)) {
      return this.refuse(noSession, this.unsupportedHeader(header));
    }
    if (header !== undefined && header !== negotiatedVersion) {
      return this.refuse(
        noSession,
        protocolError(
          'PROTOCOL_VERSION_MISMATCH',
          CODES.BAD_REQUEST,
          400,
          `MCP-Protocol-Version ${header} disagrees with initialize's ${negotiatedVersion}`,
        ),
      );
    }
    // An initialize may never be batched; one asking for a batch-free version is refused as such.
    if (request.batch === true && refusesBatches(negotiatedVersion))
      return this.refuse(noSession, batchRefused(negotiatedVersion));
    return {
      kind: 'initialize',
      revision: this.revision,
      negotiatedVersion,
      session: { ...noSession, negotiatedVersion },
    };
  }

  private checkVersion(
    header: string | undefined,
    negotiated: string | undefined,
  ): ProtocolError | undefined {
    // A version this edge no longer offers (configuration changed since the session was minted).
    if (negotiated === undefined || !this.versions.has(negotiated)) {
      return protocolError(
        'PROTOCOL_VERSION_UNSUPPORTED',
        CODES.BAD_REQUEST,
        400,
        `negotiated version ${negotiated ?? '(none)'} is no longer supported`,
        { supported: this.options.supportedVersions },
      );
    }
    if (header === undefined) {
      if (this.options.requireVersionHeader && negotiated >= VERSION_HEADER_SINCE) {
        return protocolError(
          'PROTOCOL_VERSION_MISMATCH',
          CODES.BAD_REQUEST,
          400,
          `MCP-Protocol-Version is required for sessions at ${negotiated}`,
        );
      }
      return undefined;
    }
    if (!this.versions.has(header)) return this.unsupportedHeader(header);
    if (header !== negotiated) {
      return protocolError(
        'PROTOCOL_VERSION_MISMATCH',
        CODES.BAD_REQUEST,
        400,
        `MCP-Protocol-Version ${header} disagrees with the negotiated ${negotiated}`,
      );
    }
    return undefined;
  }

  private unsupportedHeader(header: string): ProtocolError {
    return protocolError(
      'PROTOCOL_VERSION_UNSUPPORTED',
      CODES.BAD_REQUEST,
      400,
      'unsupported MCP-Protocol-Version',
      { supported: this.options.supportedVersions, requested: header },
    );
  }

  private refuse(session: SessionFacts, error: ProtocolError): ProtocolVerdict {
    return { kind: 'refuse', revision: this.revision, session, error };
  }
}
