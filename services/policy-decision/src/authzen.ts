import { z } from 'zod';
import {
  argumentsDigest,
  type ArgumentResource,
  type DecideRequestFacts,
  type ResourceFacts,
} from '@hcp/core';

/**
 * The OpenID AuthZEN 1.0 Access Evaluation API mapped onto HCP's engine.
 *
 * subject.id -> principal; action.name -> capability id (`provider/tool`);
 * resource.type `path` | `url` | `id` -> the canonical resource (the PEP must send the
 * canonical value: a path that is not absolute and normalised is refused as INPUT_INVALID,
 * because this API cannot resolve it against the provider's filesystem); any other
 * resource type means "no resource". action.properties may carry `arguments_digest`,
 * `approval_id` and `definition_digest` (the tool definition the PEP sees; a pinned
 * capability without it is TOOL_DEFINITION_CHANGED, as on every other path); resource.properties may carry `addresses` (resolved IPs of a URL).
 * The one resource is the capability's resource argument named by resource.properties
 * `argument`, else its first declared one (element 0 of an array argument). This API carries one
 * resource per evaluation, so a capability that declares several resource arguments is refused
 * INPUT_INVALID here (the engine wants every one, I3); use the gRPC Decide for it.
 * There is no MCP session on this path, so the protocol-state checks see an initialized
 * session: I8 is the calling enforcement point's job here.
 */

const entity = z.object({
  type: z.string().min(1).max(64),
  id: z.string().max(8192),
  properties: z.record(z.string(), z.unknown()).optional(),
});
const action = z.object({
  name: z.string().min(1).max(256),
  properties: z.record(z.string(), z.unknown()).optional(),
});
const context = z.record(z.string(), z.unknown());

/** Body of POST /access/v1/evaluation. */
export const evaluationSchema = z.object({
  subject: entity,
  action,
  resource: entity,
  context: context.optional(),
});

const item = z.object({
  subject: entity.optional(),
  action: action.optional(),
  resource: entity.optional(),
  context: context.optional(),
});

/** Body of POST /access/v1/evaluations: top-level defaults, each item replaces a default whole. */
export const evaluationsSchema = item.extend({
  evaluations: z.array(item).max(256).optional(),
  options: z
    .object({
      evaluations_semantic: z
        .enum(['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'])
        .optional(),
    })
    .loose()
    .optional(),
});

/** One evaluation, defaults applied. */
export type Evaluation = z.infer<typeof evaluationSchema>;

const PRINCIPAL_KINDS = new Set(['agent', 'operator', 'service']);
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const EMPTY_ARGUMENTS_DIGEST = argumentsDigest({});

function optionalString(
  props: Record<string, unknown> | undefined,
  key: string,
): string | undefined {
  const v = props?.[key];
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined;
}

/** The port a URL uses when it names none (a scheme not listed has no default). */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * The evaluation's resource as the one ArgumentResource of the call: the argument it names in
 * properties.argument, else `firstArgument` (the capability's first declared resource argument,
 * looked up by the caller), else `resource` (a capability without resource arguments then
 * refuses it as undeclared). Undefined when the resource type means "no resource".
 */
function argumentResource(
  r: Evaluation['resource'],
  firstArgument: string | undefined,
): ArgumentResource | undefined {
  const facts = resourceFacts(r);
  if (facts === undefined) return undefined;
  return { argument: resourceArgumentNamed(r) ?? firstArgument ?? 'resource', index: 0, facts };
}

/** The resource argument an evaluation's resource names in properties.argument, if any. */
export function resourceArgumentNamed(r: Evaluation['resource']): string | undefined {
  return optionalString(r.properties, 'argument');
}

function resourceFacts(r: Evaluation['resource']): ResourceFacts | undefined {
  const invalid = (kind: 'path' | 'url' | 'id', rule: string, detail: string): ResourceFacts => ({
    status: 'invalid',
    kind,
    raw: r.id,
    rule,
    detail,
  });
  switch (r.type) {
    case 'path': {
      const p = r.id;
      const normal =
        p.startsWith('/') &&
        !p
          .split('/')
          .slice(1)
          .some((s, i, all) => s === '.' || s === '..' || (s === '' && i < all.length - 1));
      if (!normal)
        return invalid(
          'path',
          'authzen.path_not_canonical',
          'path must be absolute and normalised',
        );
      return {
        status: 'resolved',
        resource: {
          kind: 'path',
          raw: p,
          canonical: p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p,
        },
      };
    }
    case 'url': {
      let url: URL;
      try {
        url = new URL(r.id);
      } catch {
        return invalid('url', 'authzen.url_unparsable', 'not a URL');
      }
      const raw = r.properties?.['addresses'];
      const addresses = Array.isArray(raw)
        ? raw.filter((a): a is string => typeof a === 'string').slice(0, 64)
        : [];
      const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
      const scheme = url.protocol.slice(0, -1);
      const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
      return {
        status: 'resolved',
        resource: {
          kind: 'url',
          raw: r.id,
          canonical: url.href,
          host,
          ...(addresses.length ? { addresses } : {}),
          scheme,
          ...(port !== undefined ? { port } : {}),
        },
      };
    }
    case 'id':
      if (r.id === '') return invalid('id', 'authzen.id_empty', 'id is empty');
      return { status: 'resolved', resource: { kind: 'id', raw: r.id, canonical: r.id } };
    default:
      return undefined;
  }
}

/**
 * An AuthZEN evaluation as the engine's input. `firstArgument`: the name of the capability's
 * first declared resource argument, for a resource that does not name its own.
 */
export function evaluationToInput(e: Evaluation, firstArgument?: string): DecideRequestFacts {
  const digest = optionalString(e.action.properties, 'arguments_digest');
  const approvalId = optionalString(e.action.properties, 'approval_id');
  const definition = optionalString(e.action.properties, 'definition_digest');
  const resource = argumentResource(e.resource, firstArgument);
  const kind = PRINCIPAL_KINDS.has(e.subject.type)
    ? (e.subject.type as 'agent' | 'operator' | 'service')
    : 'agent';
  return {
    ...(e.subject.id !== '' ? { principal: { id: e.subject.id, kind } } : {}),
    session: { state: 'active', initialized: true },
    call: {
      capabilityId: e.action.name,
      // Without a valid digest the call has no arguments: an approval then binds to `{}`.
      argumentsDigest:
        digest !== undefined && DIGEST.test(digest) ? digest : EMPTY_ARGUMENTS_DIGEST,
      ...(approvalId !== undefined ? { approvalId } : {}),
      ...(definition !== undefined ? { observedDefinitionDigest: definition } : {}),
      ...(resource !== undefined ? { resources: [resource] } : {}),
    },
    endpointFamily: 'tools/call',
  };
}
