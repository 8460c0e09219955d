// Adapters behind the call path's ports: gRPC to policy-decision, handle-vault and grant-store, the
// provider registry, @hcp/canonical, and Ajv for pinned input schemas.
export { fromGrpcError, type GrpcAdapterOptions } from './grpc-call';
export { grpcDecisionPort } from './grpc-decision-port';
export { grpcVaultPort, type GrpcVaultPortOptions } from './grpc-vault-port';
export { grpcApprovalPort } from './grpc-approval-port';
export {
  DEFAULT_MANIFEST_TTL_MS,
  GrantStoreManifest,
  type CapabilitySettings,
  type GrantStoreManifestOptions,
} from './grant-store-manifest';
export {
  DEFAULT_GRANTS_TTL_MS,
  GrantStoreGrants,
  type GrantStoreGrantsOptions,
} from './grant-store-grants';
export {
  reasonOfUpstreamFailure,
  registryUpstreamPort,
  type RegistryUpstreamPortOptions,
} from './registry-upstream-port';
export {
  canonicalizerPort,
  registryConfigOf,
  type CanonicalizerPortOptions,
} from './canonicalizer-port';
export {
  JsonSchemaArgumentValidator,
  pinnedSchemaSource,
  type JsonSchemaArgumentValidatorOptions,
  type PinnedInputSchema,
  type PinnedSchemaSource,
} from './json-schema-argument-validator';
export { TtlCache, type TtlCacheOptions } from './ttl-cache';
