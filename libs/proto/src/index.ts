import path from 'node:path';

// The generated modules, one namespace per proto package, so services write
// `policy.DecideRequest` and `core.ReasonCode` without name clashes between packages.
export * as core from './generated/hcp/core/v1/core';
export * as grants from './generated/hcp/grants/v1/grant_store';
export * as policy from './generated/hcp/policy/v1/policy_decision';
export * as vault from './generated/hcp/vault/v1/handle_vault';
export * as audit from './generated/hcp/audit/v1/audit_log';
export * as timestamp from './generated/google/protobuf/timestamp';
export * as duration from './generated/google/protobuf/duration';

/**
 * Absolute path of the repository's proto/ folder, for tools that read the .proto files
 * themselves (ghz in bench/); the services use the generated definitions. Resolved from this
 * file, so it holds for both src/ (jest) and dist/ (compiled): each is three levels below the
 * repository root.
 */
export const PROTO_ROOT: string = path.resolve(__dirname, '../../../proto');
export * from './convert/enums';
export * from './convert/domain';
export * from './convert/audit';
export * from './convert/audit-query';
export * from './convert/check';
export * from './convert/decide';
export * from './convert/vault';
export * from './convert/grants';
// The Decide request as the edge builds it and the PDP receives it (the engine's, less clock and approval).
export type { CallRequestFacts, DecideRequestFacts, PipeRequestFacts } from '@hcp/core';
