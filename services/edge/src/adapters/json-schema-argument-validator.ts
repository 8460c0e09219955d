import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { canonicalJson } from '@hcp/core';
import type { ArgumentValidatorPort } from '../call/ports';
import type { ListedCapability } from '../providers/provider-registry';

/** A capability's input schema together with the digest of the definition it belongs to. */
export interface PinnedInputSchema {
  /** Digest of the pinned tool definition; compiled validators are cached under it. */
  readonly digest: string;
  readonly inputSchema: Readonly<Record<string, unknown>>;
}

/**
 * Where the validator gets schemas: the input schema of the capability's definition whose digest
 * equals `pinnedDigest` (the manifest pin), or undefined when there is none (not listed, changed,
 * or never pinned).
 */
export type PinnedSchemaSource = (
  capabilityId: string,
  pinnedDigest: string | undefined,
) => PinnedInputSchema | undefined;

/** Bounds of the validator. */
export interface JsonSchemaArgumentValidatorOptions {
  /** Compiled schemas kept (one per definition digest); default 256. */
  readonly maxCompiled?: number;
  /** Largest schema compiled, as canonical JSON bytes; a larger one refuses every call. Default 256 KiB. */
  readonly maxSchemaBytes?: number;
}

/** Longest field path quoted in a message. */
const MAX_FIELD_CHARS = 256;

type Compiled =
  | { readonly ok: true; readonly fn: ValidateFunction }
  | { readonly ok: false; readonly why: string };

/**
 * Builds a PinnedSchemaSource from the wiring's current listing: a schema is served only while the
 * listed definition's digest equals the pin, so arguments are checked against the definition an
 * operator reviewed (I1), never a changed one.
 */
export function pinnedSchemaSource(
  listed: (capabilityId: string) => ListedCapability | undefined,
): PinnedSchemaSource {
  return (capabilityId, pinnedDigest) => {
    const entry = listed(capabilityId);
    if (entry === undefined || pinnedDigest === undefined || entry.digest !== pinnedDigest)
      return undefined;
    return { digest: entry.digest, inputSchema: entry.tool.inputSchema };
  };
}

/**
 * Validates tool arguments against the pinned input schema with Ajv (JSON Schema 2020-12, the MCP
 * default dialect, or draft-07 when the schema says so), compiling each schema once per definition
 * digest in its own Ajv instance (no `$id` clashes between providers), the cache bounded.
 *
 * A capability with no pinned schema is not checked here: the decision point refuses every call
 * whose observed definition differs from the pin (TOOL_DEFINITION_CHANGED), so only capabilities
 * that were never pinned pass unchecked. A pinned schema that cannot be compiled refuses every call
 * (fail closed). Messages name the field and the rule, never the value (it may be a secret).
 */
export class JsonSchemaArgumentValidator implements ArgumentValidatorPort {
  private readonly compiled = new Map<string, Compiled>();
  private readonly maxCompiled: number;
  private readonly maxSchemaBytes: number;

  constructor(
    private readonly schemaOf: PinnedSchemaSource,
    options: JsonSchemaArgumentValidatorOptions = {},
  ) {
    this.maxCompiled = options.maxCompiled ?? 256;
    this.maxSchemaBytes = options.maxSchemaBytes ?? 256 * 1024;
  }

  validate(
    capabilityId: string,
    args: Readonly<Record<string, unknown>>,
    pinnedDigest?: string,
  ): string | undefined {
    const pinned = this.schemaOf(capabilityId, pinnedDigest);
    if (pinned === undefined) return undefined;
    const compiled = this.compile(pinned);
    if (!compiled.ok)
      return `arguments: the pinned input schema of ${capabilityId} is unusable (${compiled.why})`;
    if (compiled.fn(args)) return undefined;
    return messageOf(compiled.fn.errors?.[0]);
  }

  /** Number of compiled schemas held (tests, metrics). */
  get size(): number {
    return this.compiled.size;
  }

  private compile(pinned: PinnedInputSchema): Compiled {
    const hit = this.compiled.get(pinned.digest);
    if (hit !== undefined) {
      // Refresh its place: the cache evicts the least recently used digest.
      this.compiled.delete(pinned.digest);
      this.compiled.set(pinned.digest, hit);
      return hit;
    }
    const result = compileSchema(pinned.inputSchema, this.maxSchemaBytes);
    this.compiled.set(pinned.digest, result);
    while (this.compiled.size > this.maxCompiled) {
      const oldest = this.compiled.keys().next();
      if (oldest.done === true) break;
      this.compiled.delete(oldest.value);
    }
    return result;
  }
}

function compileSchema(schema: Readonly<Record<string, unknown>>, maxBytes: number): Compiled {
  let size: number;
  try {
    size = Buffer.byteLength(canonicalJson(schema), 'utf8');
  } catch {
    return { ok: false, why: 'not representable as JSON' };
  }
  if (size > maxBytes) return { ok: false, why: `larger than ${maxBytes} bytes` };
  const dialect = typeof schema['$schema'] === 'string' ? schema['$schema'] : '';
  const draft07 = /json-schema\.org\/draft-0[4-7]\/schema/.test(dialect);
  // The same settings as the MCP SDK's own validator, minus its console warnings.
  const options = {
    strict: false,
    allErrors: false,
    validateFormats: true,
    logger: false,
  } as const;
  const ajv = draft07 ? new Ajv(options) : new Ajv2020(options);
  addFormats(ajv);
  try {
    return { ok: true, fn: ajv.compile(closedAtTop(schema)) };
  } catch (err: unknown) {
    return { ok: false, why: err instanceof Error ? err.message.slice(0, 200) : 'compile failed' };
  }
}

/**
 * The pinned schema with undeclared top-level arguments refused: an object schema that lists its
 * properties but says nothing of others is closed (`additionalProperties: false`), so an argument
 * the operator never reviewed cannot reach the provider (argument injection). A schema that says
 * `additionalProperties` itself, or lists no properties, is taken as written.
 */
function closedAtTop(schema: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const declaresProperties =
    typeof schema['properties'] === 'object' && schema['properties'] !== null;
  if (!declaresProperties || 'additionalProperties' in schema || 'unevaluatedProperties' in schema)
    return schema;
  return { ...schema, additionalProperties: false };
}

/** `arguments.<field>: <rule>`, the field taken from the error's location and never its value. */
function messageOf(error: ErrorObject | undefined): string {
  if (error === undefined) return 'arguments: do not match the pinned input schema';
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as Record<string, unknown>;
  let rule = error.message ?? 'is invalid';
  if (error.keyword === 'required' && typeof params['missingProperty'] === 'string') {
    segments.push(params['missingProperty']);
    rule = 'is required';
  } else if (
    error.keyword === 'additionalProperties' &&
    typeof params['additionalProperty'] === 'string'
  ) {
    segments.push(params['additionalProperty']);
    rule = 'is not allowed by the pinned input schema';
  }
  const field = ['arguments', ...segments].join('.').slice(0, MAX_FIELD_CHARS);
  return `${field}: ${rule}`;
}
