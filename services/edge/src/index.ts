// Upstream side: provider configuration, MCP clients to providers, definition pinning (I1).
export {
  DEFAULT_RELIST_INTERVAL_MS,
  PROVIDER_CONFIG_LIMITS,
  parseProviderConfig,
  providerConfigSchema,
  type HttpTransportConfig,
  type ProviderConfig,
  type StdioTransportConfig,
} from './providers/provider-config';
export {
  UpstreamClient,
  UpstreamError,
  type CallOptions,
  type UpstreamCallResult,
  type UpstreamClientOptions,
  type ToolsChangedSign,
  type UpstreamErrorKind,
  type UpstreamEvents,
  type UpstreamOperation,
} from './providers/upstream-client';
export {
  pinnedToolDefinition,
  toolDefinitionDigest,
  type PinnedToolDefinition,
} from './providers/tool-definition';
export {
  ProviderRegistry,
  capabilityIdOf,
  checkPinned,
  compareWithPins,
  listingOf,
  type DefinitionDrift,
  type ListedCapability,
  type ProviderListing,
  type RejectedTool,
} from './providers/provider-registry';
export {
  ListingRefresher,
  type ListingRefresherDeps,
  type ListingSink,
} from './providers/listing-refresh';
export {
  assertResourceArgumentsDeclared,
  pathOrUrlArguments,
  type DeclaredArguments,
} from './providers/resource-arguments';
export { FETCH_CAPABILITIES, FILESYSTEM_CAPABILITIES } from './providers/shipped-manifests';

// Agent side: authentication of each request, and explicit protocol state (I8) per MCP revision.
export {
  AUTH_JSON_RPC_CODE,
  authenticateBearer,
  bearerChallenge,
  type AuthenticationError,
  type AuthenticationResult,
  type BearerChallengeOptions,
} from './auth/authenticate';
export {
  InMemorySessionMarks,
  SignedSessionStore,
  type InMemorySessionMarksOptions,
  type SessionKey,
  type SessionLookupState,
  type SessionMarks,
  type SessionRecord,
  type SessionStore,
  type SignedSessionStoreOptions,
} from './protocol/session-store';
export {
  PROTOCOL_JSON_RPC_CODES,
  protocolError,
  type ProtocolError,
  type ProtocolErrorData,
  type ProtocolRevision,
} from './protocol/protocol-error';
export {
  singleHeader,
  type ProtocolHeaders,
  type ProtocolRequest,
  type ProtocolStateStrategy,
  type ProtocolVerdict,
} from './protocol/protocol-request';
export {
  DEFAULT_SUPPORTED_PROTOCOL_VERSIONS,
  ProtocolState,
  type ProtocolStateOptions,
} from './protocol/protocol-state';
export {
  SESSION_HEADER,
  VERSION_HEADER,
  SessionProtocolStrategy,
  type SessionProtocolStrategyOptions,
} from './protocol/session-strategy';
export {
  STATELESS_META_VERSION_KEY,
  STATELESS_REVISION_VERSION,
  StatelessProtocolStrategy,
  type StatelessProtocolStrategyOptions,
} from './protocol/stateless-strategy';

// The call path and the built-in hcp_peek / hcp_pipe, transport-free behind ports.
export {
  CALL_LIMITS,
  CallService,
  boundedArguments,
  type CallOutcome,
  type CallRefusal,
  type CallSuccess,
  type CallToolInput,
  type PeekInput,
  type PeekOutcome,
  type PipeInput,
} from './call/call.service';
export type {
  ApprovalPort,
  AuditPort,
  CallableCapability,
  CallPorts,
  CanonicalizerPort,
  DecidePipeFacts,
  DecisionPort,
  ManifestPort,
  UpstreamPort,
  VaultPort,
  VaultPreview,
  VaultPutInput,
  VaultResolved,
} from './call/ports';
export type { ApprovalRequestInput, ArgumentValidatorPort } from './call/ports';

// Adapters of the call ports to the real services (gRPC, grant-store manifest, registry, canonical).
export * from './adapters';

// URL providers: the egress proxy that re-checks every request (and so every redirect hop).
export {
  EGRESS_RULES,
  startEgressProxy,
  type EgressDialer,
  type EgressProxyOptions,
  type EgressRefusal,
  type EgressRule,
  type RunningEgressProxy,
} from './egress/egress-proxy';

// The agent-facing MCP endpoint and the composition root.
export {
  EDGE_JSON_RPC_CODES,
  EdgeRpcError,
  HTTP_LIMITS,
  HttpRefusal,
  type RefusalData,
} from './http/json-rpc';
export { APPROVAL_META_KEY, McpEndpoint, type McpEndpointDeps } from './http/mcp-endpoint';
export {
  DISCOVERY_RULE_MAX_CHARS,
  HcpEnforcement,
  discoveryRule,
  type AskClient,
  type ClientQuestion,
  type EnforcementFactory,
  type EnforcementParts,
  type HcpEnforcementDeps,
  type McpEnforcement,
  type McpRequestContext,
  type McpToolCall,
} from './http/enforcement';
export {
  BUILTIN_TOOLS,
  ListingCache,
  PEEK_TOOL,
  PIPE_TOOL,
  capabilityIdOfToolName,
  toolNameOf,
  visibleTools,
} from './http/tool-catalog';
export { EdgeHttpModule } from './http/edge-http.module';
export {
  startEdge,
  type CapabilitySpec,
  type EdgeProviderSpec,
  type RunningEdge,
  type StartEdgeOptions,
} from './edge';

// Measurement modes (DESIGN.md §5): library code for the benchmark's composition root only; the
// production entry point (main.ts -> edge.ts) never imports it (modes/production-graph.spec.ts).
export * from './modes';
