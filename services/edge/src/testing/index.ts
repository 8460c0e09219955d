// Test helpers for the edge: real upstream MCP servers to run against (never mocks).
export {
  ECHO_DESCRIPTION,
  startEchoMcpServer,
  type EchoDefinition,
  type EchoMcpServer,
  type EchoMcpServerOptions,
} from './echo-mcp-server';
export {
  createFilesystemSandbox,
  filesystemServerEntry,
  type FilesystemSandbox,
} from './filesystem-provider';
export {
  FETCH_PROVIDER_VERSION,
  ORIGIN_HELLO_TEXT,
  ORIGIN_SECRET_TEXT,
  PUBLIC_TEST_HOST,
  PUBLIC_TEST_IP,
  fetchProviderAvailable,
  fetchProviderBin,
  fetchProviderRequired,
  fetchProviderConfig,
  startRecordingOrigin,
  testResolver,
  type FetchProviderOptions,
  type OriginRequest,
  type RecordingOrigin,
} from './fetch-provider';
export {
  describeSessionMarksConformance,
  type SessionMarksUnderTest,
} from './session-marks-conformance';
export {
  startMutableMcpServer,
  type ExecutedCall,
  type MutableMcpServer,
  type MutableMcpServerOptions,
  type MutableTool,
} from './mutable-mcp-server';
