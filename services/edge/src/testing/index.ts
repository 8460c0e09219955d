// Test helpers for the edge: real upstream MCP servers to run against (never mocks).
export { ECHO_DESCRIPTION, startEchoMcpServer, type EchoMcpServer } from './echo-mcp-server';
export {
  createFilesystemSandbox,
  filesystemServerEntry,
  type FilesystemSandbox,
} from './filesystem-provider';
