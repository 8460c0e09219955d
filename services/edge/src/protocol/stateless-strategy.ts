import type { SessionFacts } from '@hcp/core';
import { PROTOCOL_JSON_RPC_CODES as CODES, batchRefused, protocolError } from './protocol-error';
import type { ProtocolError, ProtocolRevision } from './protocol-error';
import { refusesBatches, singleHeader } from './protocol-request';
import type { ProtocolRequest, ProtocolStateStrategy, ProtocolVerdict } from './protocol-request';

/** The first stateless MCP revision: no initialize, no session, the version in every request. */
export const STATELESS_REVISION_VERSION = '2026-07-28';
/**
 * The `_meta` key the 2026-07-28 draft puts the per-request version under. Configurable
 * because the key was taken from the draft; confirm it against the final text before enabling.
 */
export const STATELESS_META_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const VERSION_HEADER = 'mcp-protocol-version';
const METHOD_HEADER = 'mcp-method';
const NAME_HEADER = 'mcp-name';
/** Methods whose target the Mcp-Name header repeats, and the param that holds it (SEP-2243). */
const NAME_PARAM: ReadonlyMap<string, 'name' | 'uri'> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
  ['resources/subscribe', 'uri'],
  ['resources/unsubscribe', 'uri'],
]);

/** Configuration of the stateless strategy. */
export interface StatelessProtocolStrategyOptions {
  readonly supportedVersions: readonly string[];
  readonly metaVersionKey?: string;
}

type Request = ProtocolRequest & { readonly principalId: string };

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * Protocol state for the 2026-07-28 revision: each POST is self-contained. The version in `_meta`
 * must be supported (-32022) and agree with MCP-Protocol-Version; Mcp-Method and Mcp-Name must
 * repeat the body (-32020), so routing on headers can never disagree with what executes. The
 * request becomes a one-request session owned by the caller, so the engine's I8/I4 checks apply
 * unchanged. Off by default (ProtocolStateOptions.statelessRevision).
 */
export class StatelessProtocolStrategy implements ProtocolStateStrategy {
  readonly revision: ProtocolRevision = '2026-07-28-stateless';
  private readonly versions: ReadonlySet<string>;
  private readonly metaKey: string;

  constructor(private readonly options: StatelessProtocolStrategyOptions) {
    this.versions = new Set(options.supportedVersions);
    this.metaKey = options.metaVersionKey ?? STATELESS_META_VERSION_KEY;
  }

  /** A POST (other than initialize) that declares a version of this revision or later. */
  claims(request: ProtocolRequest): boolean {
    if (request.httpMethod !== 'POST' || request.message?.method === 'initialize') return false;
    const declared = [
      singleHeader(request.headers, VERSION_HEADER).value,
      this.metaVersion(request),
    ];
    return declared.some((v) => typeof v === 'string' && v >= STATELESS_REVISION_VERSION);
  }

  evaluate(request: Request): Promise<ProtocolVerdict> {
    return Promise.resolve(this.check(request));
  }

  private check(request: Request): ProtocolVerdict {
    const header = singleHeader(request.headers, VERSION_HEADER);
    const meta = this.metaVersion(request);
    const declared = typeof meta === 'string' ? meta : undefined;
    const none: SessionFacts = {
      state: 'none',
      initialized: false,
      ...(declared !== undefined ? { requestVersion: declared } : {}),
    };
    if (declared === undefined || !this.versions.has(declared)) {
      return this.refuse(
        none,
        protocolError(
          'PROTOCOL_VERSION_UNSUPPORTED',
          CODES.UNSUPPORTED_PROTOCOL_VERSION,
          400,
          declared === undefined
            ? `no protocol version in _meta["${this.metaKey}"]`
            : 'unsupported protocol version',
          {
            supported: this.options.supportedVersions,
            ...(declared !== undefined ? { requested: declared } : {}),
          },
        ),
      );
    }
    if (header.duplicated || (header.value !== undefined && header.value !== declared)) {
      return this.refuse(
        none,
        protocolError(
          'PROTOCOL_VERSION_MISMATCH',
          CODES.HEADER_MISMATCH,
          400,
          'MCP-Protocol-Version disagrees with the version in _meta',
          { header: 'MCP-Protocol-Version' },
        ),
      );
    }
    if (request.batch === true && refusesBatches(declared))
      return this.refuse(none, batchRefused(declared));
    const mismatch = this.headerMismatch(request);
    if (mismatch !== undefined) {
      return this.refuse(
        none,
        protocolError('INPUT_INVALID', CODES.HEADER_MISMATCH, 400, mismatch.message, {
          header: mismatch.header,
        }),
      );
    }
    return {
      kind: 'proceed',
      revision: this.revision,
      // No session exists: the request is its own, owned by the caller, initialized by definition.
      session: {
        state: 'active',
        initialized: true,
        ownerPrincipalId: request.principalId,
        negotiatedVersion: declared,
        requestVersion: declared,
      },
      lifecycle: 'none',
    };
  }

  /** Mcp-Method must equal the body's method; Mcp-Name must equal its name/uri, and only then exist. */
  private headerMismatch(request: Request): { header: string; message: string } | undefined {
    const method = request.message?.method;
    const methodHeader = singleHeader(request.headers, METHOD_HEADER);
    if (methodHeader.duplicated || typeof method !== 'string' || methodHeader.value !== method)
      return { header: 'Mcp-Method', message: 'Mcp-Method does not match the request body' };
    const param = NAME_PARAM.get(method);
    const target = param === undefined ? undefined : record(request.message?.params)?.[param];
    const nameHeader = singleHeader(request.headers, NAME_HEADER);
    const expected = typeof target === 'string' ? target : undefined;
    if (nameHeader.duplicated || nameHeader.value !== expected)
      return { header: 'Mcp-Name', message: 'Mcp-Name does not match the request body' };
    return undefined;
  }

  private metaVersion(request: ProtocolRequest): unknown {
    return record(record(request.message?.params)?.['_meta'])?.[this.metaKey];
  }

  private refuse(session: SessionFacts, error: ProtocolError): ProtocolVerdict {
    return { kind: 'refuse', revision: this.revision, session, error };
  }
}
