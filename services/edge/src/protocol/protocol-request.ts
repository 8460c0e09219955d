import type { SessionFacts } from '@hcp/core';
import type { ProtocolError, ProtocolRevision } from './protocol-error';

/** Request headers as Node delivers them (lower-case names; repeated headers as arrays). */
export type ProtocolHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The facts of one incoming MCP HTTP request that protocol state depends on. A POST body with a
 * JSON-RPC batch is evaluated once per message; only 2025-03-26 admits batches
 * (BATCHES_REMOVED_IN).
 */
export interface ProtocolRequest {
  readonly httpMethod: 'POST' | 'GET' | 'DELETE';
  /** The JSON-RPC message of a POST; absent for GET and DELETE. A response message has no method. */
  readonly message?: { readonly method?: unknown; readonly params?: unknown };
  /** True when the message came in a JSON-RPC batch (a POST body that is an array). */
  readonly batch?: boolean;
  readonly headers: ProtocolHeaders;
  /** The authenticated principal; absent only if authentication was skipped (refused here too). */
  readonly principalId?: string;
}

/**
 * The protocol layer's answer. `proceed` carries SessionFacts for the decision engine (which
 * re-checks them, so ablations and audit go through one path); `refuse` carries the typed error
 * and the facts that led to it, so the refusal can be decided and audited the same way.
 */
export type ProtocolVerdict =
  | {
      readonly kind: 'initialize';
      readonly revision: ProtocolRevision;
      /** The version to answer initialize with and to bind into the session. */
      readonly negotiatedVersion: string;
      readonly session: SessionFacts;
    }
  | {
      readonly kind: 'proceed';
      readonly revision: ProtocolRevision;
      readonly session: SessionFacts;
      /** A lifecycle step to record once the request was handled; see ProtocolState.settle. */
      readonly lifecycle: 'none' | 'initialized' | 'end';
      /** The Mcp-Session-Id the request carried (needed to settle the lifecycle step). */
      readonly sessionId?: string;
    }
  | {
      readonly kind: 'refuse';
      readonly revision: ProtocolRevision;
      readonly session: SessionFacts;
      readonly error: ProtocolError;
    };

/**
 * One MCP revision's rules for protocol state. Strategies are selected per request, so a new
 * revision is a new strategy and the decision path (SessionFacts -> engine) does not change.
 */
export interface ProtocolStateStrategy {
  readonly revision: ProtocolRevision;
  /** True when the request speaks this revision. */
  claims(request: ProtocolRequest): boolean;
  evaluate(request: ProtocolRequest & { readonly principalId: string }): Promise<ProtocolVerdict>;
}

/** The first revision without JSON-RPC batching (2025-06-18 removed it from the protocol). */
export const BATCHES_REMOVED_IN = '2025-06-18';

/** True when a session at `version` may not receive JSON-RPC batches (any version from BATCHES_REMOVED_IN on). */
export function refusesBatches(version: string): boolean {
  return version >= BATCHES_REMOVED_IN;
}

/** The value of a header that must appear at most once; `duplicated` when it came twice. */
export function singleHeader(
  headers: ProtocolHeaders,
  name: string,
): { readonly value?: string; readonly duplicated: boolean } {
  const raw = headers[name.toLowerCase()];
  if (raw === undefined) return { duplicated: false };
  if (typeof raw === 'string') return { value: raw, duplicated: false };
  if (raw.length === 1) return { value: raw[0]!, duplicated: false };
  return { duplicated: raw.length > 1 };
}
