import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { URL_LENGTH_LIMIT_BOUNDS } from '@hcp/canonical';
import { HcpError } from '@hcp/core';

/**
 * Upper bounds on a provider configuration. A configuration comes from an
 * operator file or API, so it is still input: the bounds keep one bad entry
 * from spawning a process with megabytes of arguments or holding a huge
 * header map in memory.
 */
export const PROVIDER_CONFIG_LIMITS = {
  idMaxLength: 64,
  commandMaxLength: 4096,
  argsMaxCount: 64,
  argMaxLength: 4096,
  envMaxCount: 64,
  envValueMaxLength: 8192,
  pathMaxLength: 4096,
  urlMaxLength: 2048,
  headersMaxCount: 32,
  headerValueMaxLength: 8192,
  filesystemRootsMaxCount: 32,
  allowCidrsMaxCount: 64,
  relistIntervalMinMs: 1000,
  relistIntervalMaxMs: 3_600_000,
} as const;

/** How often a provider is listed again when its config names no interval (I1). */
export const DEFAULT_RELIST_INTERVAL_MS = 60_000;

const L = PROVIDER_CONFIG_LIMITS;

/** A provider id becomes the prefix of every capability id (`provider/tool`), so it may not contain `/`. */
const providerIdSchema = z
  .string()
  .max(L.idMaxLength)
  .regex(
    /^[a-z][a-z0-9_-]*$/,
    'must start with a lower-case letter and contain only a-z, 0-9, "_" and "-"',
  );

const absolutePath = z
  .string()
  .min(1)
  .max(L.pathMaxLength)
  .refine((p) => isAbsolute(p), 'must be an absolute path')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

const noNul = (s: string): boolean => !s.includes('\0');

const stdioTransportSchema = z.strictObject({
  kind: z.literal('stdio'),
  command: z.string().min(1).max(L.commandMaxLength).refine(noNul, 'must not contain NUL'),
  args: z
    .array(z.string().max(L.argMaxLength).refine(noNul, 'must not contain NUL'))
    .max(L.argsMaxCount)
    .default([]),
  /**
   * Extra environment for the child. The SDK adds only a small safe set of the
   * edge's own variables (PATH, HOME, USER, SHELL, TERM, LOGNAME), so the
   * edge's secrets are not inherited unless named here.
   */
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'),
      z.string().max(L.envValueMaxLength).refine(noNul, 'must not contain NUL'),
    )
    .refine((r) => Object.keys(r).length <= L.envMaxCount, `at most ${L.envMaxCount} variables`)
    .optional(),
  cwd: absolutePath.optional(),
});

const httpTransportSchema = z.strictObject({
  kind: z.literal('http'),
  url: z
    .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
    .max(L.urlMaxLength)
    .refine((u) => {
      // Refinements still run after a failed url check, so the text may not parse.
      const parsed = URL.canParse(u) ? new URL(u) : undefined;
      return parsed === undefined || (parsed.username === '' && parsed.password === '');
    }, 'must not carry credentials; put them in headers'),
  /** May carry credentials (Authorization): never logged, never echoed in errors. */
  headers: z
    .record(
      z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name'),
      z
        .string()
        .max(L.headerValueMaxLength)
        .refine((v) => !/[\r\n\0]/.test(v), 'must not contain CR, LF or NUL'),
    )
    .refine(
      (r) => Object.keys(r).length <= L.headersMaxCount,
      `at most ${L.headersMaxCount} headers`,
    )
    .optional(),
});

const resourcesSchema = z.strictObject({
  /** Roots handed to the path canonicaliser for this provider's file arguments (I3). */
  filesystemRoots: z.array(absolutePath).max(L.filesystemRootsMaxCount).optional(),
  /** Explicit allow rules for otherwise refused address ranges of this provider's URL arguments. */
  allowCidrs: z
    .array(z.union([z.cidrv4(), z.cidrv6()], { error: 'must be an IPv4 or IPv6 CIDR' }))
    .max(L.allowCidrsMaxCount)
    .optional(),
  /** Longest raw URL this provider's URL arguments may carry; absent: DEFAULT_MAX_URL_LENGTH (8192). */
  maxUrlLength: z
    .number()
    .int()
    .min(URL_LENGTH_LIMIT_BOUNDS.min)
    .max(URL_LENGTH_LIMIT_BOUNDS.max)
    .optional(),
});

/** The zod schema of one provider entry; exported so a larger configuration can embed it. */
export const providerConfigSchema = z.strictObject({
  id: providerIdSchema,
  transport: z.discriminatedUnion('kind', [stdioTransportSchema, httpTransportSchema]),
  resources: resourcesSchema.optional(),
  /**
   * How often the edge lists this provider again to notice changed definitions (I1), in ms;
   * default 60 000. A provider that changes a tool without announcing it can run the changed
   * definition for up to one interval; an announced change (`notifications/tools/list_changed`)
   * makes its tools uncallable at once and is re-listed without waiting for the interval.
   */
  relistIntervalMs: z
    .number()
    .int()
    .min(L.relistIntervalMinMs)
    .max(L.relistIntervalMaxMs)
    .optional(),
});

/** One upstream MCP server as the operator described it: how to reach it and what it may touch. */
export type ProviderConfig = z.infer<typeof providerConfigSchema>;

/** The stdio variant, for code that spawns the child. */
export type StdioTransportConfig = Extract<ProviderConfig['transport'], { kind: 'stdio' }>;

/** The Streamable HTTP variant. */
export type HttpTransportConfig = Extract<ProviderConfig['transport'], { kind: 'http' }>;

/**
 * Validates an untrusted provider configuration. Throws HcpError
 * `INPUT_INVALID` naming the first offending field (e.g.
 * `transport.url`), so an operator sees which entry to fix; values are never
 * echoed because headers and env may hold secrets.
 */
export function parseProviderConfig(input: unknown): ProviderConfig {
  const result = providerConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
  throw new HcpError('INPUT_INVALID', `provider config: ${field}: ${issue?.message ?? 'invalid'}`, {
    field,
  });
}
