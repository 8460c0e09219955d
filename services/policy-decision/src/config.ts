import { z } from 'zod';
import { benchmarkOnlyEnvFields, configFields, loadConfig } from '@hcp/platform';

/** Protocol versions HCP accepts by default: those the MCP SDK in use supports with sessions. */
export const DEFAULT_PROTOCOL_VERSIONS = ['2025-03-26', '2025-06-18', '2025-11-25'];

/** Environment of the distributed policy-decision process (docs/operations.md lists every variable). */
export const policyDecisionConfigSchema = z.object({
  HCP_PDP_HOST: z.string().default('127.0.0.1'),
  HCP_PDP_GRPC_PORT: configFields.port(50052),
  HCP_PDP_HTTP_PORT: configFields.port(8081),
  HCP_GRANT_STORE_URL: z.string().min(1, 'required: host:port of grant-store'),
  HCP_NATS_URL: z.string().min(1, 'required: nats://host:port'),
  HCP_PDP_MAX_STALENESS_MS: configFields.millis(5000),
  HCP_PDP_FETCH_DEADLINE_MS: configFields.millis(1000),
  HCP_PROTOCOL_VERSIONS: z
    .string()
    .default(DEFAULT_PROTOCOL_VERSIONS.join(','))
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    ),
  // Refused: ablations are composed by the benchmark in code (startPolicyDecision's `ablations`).
  ...benchmarkOnlyEnvFields,
  HCP_AUTHZEN_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
});

/** The parsed configuration. */
export type PolicyDecisionConfig = z.infer<typeof policyDecisionConfigSchema>;

/** Reads and validates the environment; throws ConfigError naming each bad variable. */
export function loadPolicyDecisionConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PolicyDecisionConfig {
  return loadConfig(policyDecisionConfigSchema, env);
}
