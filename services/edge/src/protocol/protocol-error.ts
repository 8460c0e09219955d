import type { ReasonCode } from '@hcp/core';

/**
 * JSON-RPC error codes the protocol layer answers with. -32000/-32001 follow the MCP SDK's
 * Streamable HTTP transport so SDK clients react as they would to the SDK server (-32001 with
 * HTTP 404 makes them re-initialize); -32020/-32022 are the 2026-07-28 revision's codes.
 */
export const PROTOCOL_JSON_RPC_CODES = {
  INVALID_REQUEST: -32600,
  INVALID_PARAMS: -32602,
  BAD_REQUEST: -32000,
  SESSION_NOT_FOUND: -32001,
  HEADER_MISMATCH: -32020,
  UNSUPPORTED_PROTOCOL_VERSION: -32022,
} as const;

/** The MCP revisions the edge knows how to hold protocol state for; selects the strategy. */
export type ProtocolRevision = '2025-sessions' | '2026-07-28-stateless';

/** Safe, non-secret data shown to the client beside the reason (e.g. the versions we support). */
export interface ProtocolErrorData {
  readonly supported?: readonly string[];
  readonly requested?: string;
  readonly header?: string;
}

/**
 * A typed refusal of the protocol layer (I8, plus I4's session binding): the JSON-RPC error, the
 * HTTP status it travels with, and the closed reason code the audit entry records.
 */
export interface ProtocolError {
  readonly reason: ReasonCode;
  readonly jsonRpcCode: number;
  readonly httpStatus: number;
  readonly message: string;
  readonly data?: ProtocolErrorData;
}

/** Builds a ProtocolError; keeps the shape in one place. */
export function protocolError(
  reason: ReasonCode,
  jsonRpcCode: number,
  httpStatus: number,
  message: string,
  data?: ProtocolErrorData,
): ProtocolError {
  return data === undefined
    ? { reason, jsonRpcCode, httpStatus, message }
    : { reason, jsonRpcCode, httpStatus, message, data };
}

/** A JSON-RPC batch sent at a version that has none (INPUT_INVALID, -32600: not a valid request there). */
export function batchRefused(version: string): ProtocolError {
  return protocolError(
    'INPUT_INVALID',
    PROTOCOL_JSON_RPC_CODES.INVALID_REQUEST,
    400,
    `JSON-RPC batches are not part of MCP ${version}: send one message per request`,
  );
}
