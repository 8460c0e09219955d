import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import {
  authEnvFields,
  benchmarkOnlyEnvFields,
  ConfigError,
  configFields,
  loadConfig,
  requireAuthEnv,
  tokenVerifierOptionsOf,
  type TokenVerifierOptions,
} from '@hcp/platform';
import { RESOURCE_ROLES, type ResourceRole } from '@hcp/core';
import type { CapabilitySettings } from './adapters';
import type { CapabilitySpec, EdgeProviderSpec } from './edge';
import { providerConfigSchema } from './providers/provider-config';
import type { SessionKey } from './protocol/session-store';

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_SESSION_SECRET = 32;
const MAX_SESSION_KEYS = 8;

/**
 * `kid:secret,kid2:secret2` -> keyring. The first key signs new session ids, every key verifies
 * (rotation: put the new key first, keep the old one until its sessions have expired).
 */
export function parseSessionKeys(text: string, ctx?: z.RefinementCtx): SessionKey[] {
  const keys: SessionKey[] = [];
  const problem = (message: string) => {
    if (ctx === undefined) throw new Error(message);
    ctx.addIssue({ code: 'custom', message });
  };
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > MAX_SESSION_KEYS) problem(`at most ${MAX_SESSION_KEYS} keys`);
  parts.forEach((part, i) => {
    const colon = part.indexOf(':');
    const id = colon < 0 ? '' : part.slice(0, colon);
    const secret = colon < 0 ? '' : part.slice(colon + 1);
    // Secrets are never echoed: the message names the key by position and id only.
    if (!KEY_ID.test(id)) problem(`key ${i + 1}: expected kid:secret with kid of [A-Za-z0-9._-]`);
    else if (Buffer.byteLength(secret, 'utf8') < MIN_SESSION_SECRET)
      problem(`key ${id}: secret must be at least ${MIN_SESSION_SECRET} characters`);
    else if (keys.some((k) => k.id === id)) problem(`key ${id} given twice`);
    else keys.push({ id, secret });
  });
  return keys;
}

/** A variable that must be set and non-empty; the message says what goes in it. */
const required = (message: string) => z.string({ error: message }).min(1, message);

/** Environment of the distributed edge process (docs/operations.md, "Running the edge"). */
export const edgeConfigSchema = z
  .object({
    HCP_HOST: z.string().min(1).default('127.0.0.1'),
    HCP_EDGE_PORT: configFields.port(8080),
    HCP_GRANT_STORE_URL: required('required: host:port of grant-store gRPC'),
    HCP_PDP_URL: required('required: host:port of policy-decision gRPC'),
    HCP_VAULT_URL: required('required: host:port of handle-vault gRPC'),
    HCP_NATS_URL: required('required: nats://host:port'),
    ...authEnvFields(true),
    HCP_SESSION_KEYS: z
      .string({ error: 'required: kid:secret[,kid2:secret2] (secrets of 32+ characters)' })
      .transform((text, ctx) => parseSessionKeys(text, ctx)),
    HCP_SESSION_MARKS_BUCKET: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a NATS KV bucket name: A-Z a-z 0-9 _ -, at most 64')
      .default('hcp_session_marks'),
    HCP_SESSION_MARKS_TIMEOUT_MS: configFields.millis(1000),
    HCP_EDGE_PROVIDERS_FILE: required('required: path of the providers JSON file'),
    ...benchmarkOnlyEnvFields,
  })
  .superRefine((env, ctx) => {
    requireAuthEnv(env, ctx, true);
  });

/** The parsed configuration. */
export type EdgeConfig = z.infer<typeof edgeConfigSchema>;

/** Reads and validates the environment; throws ConfigError naming each bad variable. */
export function loadEdgeConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): EdgeConfig {
  return loadConfig(edgeConfigSchema, env);
}

/** The token verifier options the configuration selects (reads the public key file). */
export function verifierOptionsOf(config: EdgeConfig): TokenVerifierOptions {
  return tokenVerifierOptionsOf(config)!;
}

/** Bounds on the providers file: it is operator input, but still input. */
export const PROVIDERS_FILE_LIMITS = {
  maxBytes: 1024 * 1024,
  providers: 64,
  capabilitiesPerProvider: 256,
  resourceArgumentsPerCapability: 16,
  settings: 1024,
} as const;

const L = PROVIDERS_FILE_LIMITS;

const capabilitySpecSchema = z.strictObject({
  tool: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_.-]+$/, 'may contain only letters, digits, _ . -'),
  effects: z
    .array(z.enum(['read', 'write', 'delete', 'network', 'execute']))
    .max(5)
    .refine((e) => new Set(e).size === e.length, 'must not repeat an effect'),
  risk: z.enum(['low', 'medium', 'high']),
  approvalRequired: z.boolean().default(false),
  requiredScopes: z
    .array(z.string().min(1).max(128).regex(/^\S+$/, 'must not contain whitespace'))
    .max(32)
    .default([]),
  // Every argument naming a resource (move_file: source and destination), each decided (I3, I5).
  resourceArguments: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(128),
        canonicalizer: z.enum(['path', 'url', 'id']),
        role: z.enum(RESOURCE_ROLES as [ResourceRole, ...ResourceRole[]]),
        scopes: z
          .array(z.string().min(1).max(128).regex(/^\S+$/, 'must not contain whitespace'))
          .max(32)
          .optional(),
        many: z.boolean().optional(),
      }),
    )
    .max(L.resourceArgumentsPerCapability)
    .refine(
      (args) => new Set(args.map((a) => a.name)).size === args.length,
      'must not name an argument twice',
    )
    .default([]),
  // Arguments that look like a path or URL but are not resources (search_files' pattern): the
  // edge's pin-time check would otherwise refuse the entry for leaving them undeclared.
  nonResourceArguments: z.array(z.string().min(1).max(128)).max(16).optional(),
});

const capabilitySettingsSchema = z.strictObject({
  inlinePreview: z.boolean().optional(),
  previewMaxBytes: z.number().int().positive().optional(),
  sensitivity: z.string().min(1).max(64).optional(),
  sensitivePaths: z
    .array(
      z.strictObject({
        prefix: z
          .string()
          .min(1)
          .max(4096)
          .refine((p) => p.startsWith('/'), 'must be an absolute path'),
        sensitivity: z.string().min(1).max(64),
      }),
    )
    .max(64)
    .optional(),
});

/**
 * The providers file: which upstream MCP servers the edge connects, the manifest entries of
 * their tools (a tool without one is not callable), and edge-side settings per capability id.
 */
export const providersFileSchema = z
  .strictObject({
    providers: z
      .array(
        z.strictObject({
          config: providerConfigSchema,
          capabilities: z.array(capabilitySpecSchema).max(L.capabilitiesPerProvider).default([]),
          egress: z
            .strictObject({ proxyUrlArg: z.string().regex(/^--?[A-Za-z0-9][A-Za-z0-9-]*$/) })
            .optional(),
        }),
      )
      .max(L.providers),
    capabilitySettings: z
      .record(
        z
          .string()
          .regex(/^[a-z][a-z0-9_-]*\/(\*|[A-Za-z0-9_.-]+)$/, 'must be provider/tool or provider/*'),
        capabilitySettingsSchema,
      )
      .refine((r) => Object.keys(r).length <= L.settings, `at most ${L.settings} entries`)
      .default({}),
  })
  .superRefine((file, ctx) => {
    const ids = new Set<string>();
    const capabilityIds = new Set<string>();
    file.providers.forEach((p, i) => {
      if (ids.has(p.config.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', i, 'config', 'id'],
          message: `provider ${p.config.id} given twice`,
        });
        return;
      }
      ids.add(p.config.id);
      p.capabilities.forEach((c, j) => {
        const id = `${p.config.id}/${c.tool}`;
        if (capabilityIds.has(id))
          ctx.addIssue({
            code: 'custom',
            path: ['providers', i, 'capabilities', j, 'tool'],
            message: `${id} given twice`,
          });
        capabilityIds.add(id);
      });
    });
    // A typo here would silently drop a preview or a sensitivity label: refuse it instead.
    for (const id of Object.keys(file.capabilitySettings))
      if (!capabilityIds.has(id) && !(id.endsWith('/*') && ids.has(id.slice(0, -2))))
        ctx.addIssue({
          code: 'custom',
          path: ['capabilitySettings', id],
          message: 'names no capability of the providers above',
        });
  });

/** What the edge reads from the providers file. */
export interface EdgeProvidersFile {
  readonly providers: readonly EdgeProviderSpec[];
  readonly capabilitySettings: Readonly<Record<string, CapabilitySettings>>;
}

/**
 * Reads and validates the providers file. Every problem is a ConfigError on the variable
 * HCP_EDGE_PROVIDERS_FILE whose message names the field (`providers.0.config.transport.url`);
 * values are never echoed, because provider headers and env may hold credentials.
 */
export function loadProvidersFile(
  path: string,
  variable = 'HCP_EDGE_PROVIDERS_FILE',
): EdgeProvidersFile {
  const fail = (message: string): never => {
    throw new ConfigError([{ variable, message }]);
  };
  let text = '';
  try {
    const size = statSync(path).size;
    if (size > L.maxBytes) fail(`${path}: larger than ${L.maxBytes} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err: unknown) {
    if (err instanceof ConfigError) throw err;
    fail(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err: unknown) {
    fail(`${path}: not JSON: ${(err as Error).message}`);
  }
  const result = providersFileSchema.safeParse(raw);
  if (!result.success)
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        variable,
        message: `${path}: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`,
      })),
    );
  const providers = result.data.providers.map((p): EdgeProviderSpec => ({
    config: p.config,
    capabilities: p.capabilities.map((c): CapabilitySpec => ({
      tool: c.tool,
      effects: c.effects,
      risk: c.risk,
      approvalRequired: c.approvalRequired,
      requiredScopes: c.requiredScopes,
      resourceArguments: c.resourceArguments.map((a) => ({
        name: a.name,
        canonicalizer: a.canonicalizer,
        role: a.role,
        ...(a.scopes === undefined ? {} : { scopes: a.scopes }),
        ...(a.many === undefined ? {} : { many: a.many }),
      })),
      ...(c.nonResourceArguments === undefined
        ? {}
        : { nonResourceArguments: c.nonResourceArguments }),
    })),
    ...(p.egress === undefined ? {} : { egress: { proxyUrlArg: p.egress.proxyUrlArg } }),
  }));
  return { providers, capabilitySettings: result.data.capabilitySettings };
}
