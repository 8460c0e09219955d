import {
  Catch,
  HttpException,
  HttpStatus,
  NotFoundException,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import {
  assertNever,
  HcpError,
  type AuditEntry,
  type DenialReason,
  type Principal,
} from '@hcp/core';
import { bearerToken, createLogger, traceIdOf, type TokenVerifier } from '@hcp/platform';
import { ownRefusal } from './audit-refusal';
import { EntryNotFoundError, NotAcceptableError, OperatorRequiredError } from './errors';
import { PRINCIPAL_KEY } from './operator.guard';

/** How the REST API answers one error: status, reason code, and whether it is a refusal. */
interface HttpError {
  readonly status: number;
  /** The HTTP-level name (`NOT_FOUND`, `METHOD_NOT_ALLOWED`, …); kept for existing clients. */
  readonly code: string;
  readonly message: string;
  /** Set for a refusal of the caller: its reason code and the check that refused. */
  readonly refusal?: { readonly reason: DenialReason; readonly check: string };
  readonly headers?: Readonly<Record<string, string>>;
}

const log = createLogger('AuditHttpExceptionFilter');

/** Routes the REST API serves, all GET (and HEAD); a known path asked with another method is a 405. */
export const AUDIT_HTTP_ROUTES: readonly RegExp[] = [
  /^\/v1\/audit\/entries\/?$/,
  /^\/v1\/audit\/entries\/[^/]+\/?$/,
  /^\/v1\/audit\/verify\/?$/,
  /^\/healthz\/?$/,
  /^\/readyz\/?$/,
  /^\/v1\/openapi\.json\/?$/,
];
const ALLOWED_METHODS = 'GET, HEAD';

const refusal = (
  status: number,
  code: string,
  message: string,
  reason: DenialReason,
  check: string,
  headers?: Record<string, string>,
): HttpError => ({
  status,
  code,
  message,
  refusal: { reason, check },
  ...(headers ? { headers } : {}),
});

/** The one place audit-log's errors become HTTP statuses, reason codes and the check that refused. */
export function httpErrorOf(err: unknown, method = 'GET', path = '/'): HttpError {
  if (err instanceof HcpError) {
    const reason = err.reason;
    switch (reason) {
      case 'PRINCIPAL_UNAUTHENTICATED':
        return refusal(401, reason, err.message, reason, 'audit_api.auth', {
          'WWW-Authenticate': 'Bearer realm="hcp-audit"',
        });
      case 'INPUT_INVALID':
        return refusal(400, reason, err.message, reason, 'audit_api.query');
      case 'PAYLOAD_TOO_LARGE':
        return refusal(413, reason, err.message, reason, 'audit_api.query');
      case 'AUDIT_UNAVAILABLE':
      case 'POLICY_UNAVAILABLE':
      case 'PROVIDER_UNAVAILABLE':
      case 'VAULT_UNAVAILABLE':
        return { status: 503, code: reason, message: err.message };
      case 'ALLOWED':
        // Never thrown; an allow is not an error.
        return { status: 500, code: 'INTERNAL', message: 'internal error' };
      case 'SESSION_NOT_INITIALIZED':
      case 'PROTOCOL_VERSION_UNSUPPORTED':
      case 'PROTOCOL_VERSION_MISMATCH':
      case 'SESSION_UNKNOWN':
      case 'SESSION_EXPIRED':
      case 'SESSION_FOREIGN':
      case 'CAPABILITY_UNKNOWN':
      case 'TOOL_DEFINITION_CHANGED':
      case 'NO_MATCHING_GRANT':
      case 'SCOPE_MISSING':
      case 'RESOURCE_DENIED':
      case 'RESOURCE_UNRESOLVABLE':
      case 'APPROVAL_REQUIRED':
      case 'APPROVAL_MISMATCH':
      case 'APPROVAL_EXPIRED':
      case 'APPROVAL_CONSUMED':
      case 'HANDLE_NOT_OWNED':
      case 'HANDLE_EXPIRED':
      case 'PIPE_TARGET_DENIED':
      case 'ARGUMENT_NOT_GRANTED':
        return refusal(403, reason, err.message, reason, 'audit_api.operator');
      default:
        return assertNever(reason, 'reason code');
    }
  }
  // The token is valid but not an operator's: it lacks the scope reading the audit needs.
  if (err instanceof OperatorRequiredError)
    return refusal(403, 'FORBIDDEN', err.message, 'SCOPE_MISSING', 'audit_api.operator');
  if (err instanceof EntryNotFoundError)
    return refusal(404, 'NOT_FOUND', err.message, 'INPUT_INVALID', 'audit_api.entry');
  if (err instanceof NotAcceptableError)
    return refusal(406, 'NOT_ACCEPTABLE', err.message, 'INPUT_INVALID', 'audit_api.accept');
  if (err instanceof NotFoundException) {
    // Nest answers every unmatched method and path with 404; a known path is a wrong method.
    if (AUDIT_HTTP_ROUTES.some((r) => r.test(path)))
      return refusal(
        405,
        'METHOD_NOT_ALLOWED',
        `${method} is not allowed here (allowed: ${ALLOWED_METHODS})`,
        'INPUT_INVALID',
        'audit_api.method',
        { Allow: ALLOWED_METHODS },
      );
    return refusal(404, 'NOT_FOUND', `no route ${path}`, 'INPUT_INVALID', 'audit_api.route');
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    if (status === 413)
      return refusal(413, 'PAYLOAD_TOO_LARGE', err.message, 'PAYLOAD_TOO_LARGE', 'audit_api.body');
    if (status === 415)
      return refusal(415, 'UNSUPPORTED_MEDIA_TYPE', err.message, 'INPUT_INVALID', 'audit_api.body');
    if (status >= 400 && status < 500)
      return refusal(status, 'INPUT_INVALID', err.message, 'INPUT_INVALID', 'audit_api.request');
    // 503 from /readyz and the like: a state report, not a refusal of the caller (and a probe
    // every few seconds must not grow the chain).
    return { status, code: status === 503 ? 'UNAVAILABLE' : 'HTTP_ERROR', message: err.message };
  }
  log.error({ err }, 'unexpected error in the audit REST API');
  return { status: HttpStatus.INTERNAL_SERVER_ERROR, code: 'INTERNAL', message: 'internal error' };
}

interface ExpressRequest {
  readonly method: string;
  readonly path: string;
  readonly originalUrl: string;
  readonly headers: Record<string, string | string[] | undefined>;
  [PRINCIPAL_KEY]?: Principal;
}

interface ExpressResponse {
  status(code: number): ExpressResponse;
  setHeader(name: string, value: string): void;
  json(body: unknown): void;
  readonly headersSent: boolean;
}

/** Where the filter records refusals: audit-log's own chain (AuditIngestService.appendOwn). */
export interface RefusalRecorder {
  appendOwn(entry: AuditEntry): Promise<void>;
}

/**
 * Global filter of the HTTP app: every error, also from guards and unknown routes, in one shape
 * `{ reason, decisionId, error: { code, message } }`. Every refusal of the caller goes through the
 * one refusal path and is committed to audit-log's own chain before the reply (I7), so the
 * decision id in the reply finds its entry. A refusal raised before the guard (404, 405, a path
 * that does not decode) is answered only after authentication, like every route of the API.
 */
@Catch()
export class AuditHttpExceptionFilter implements ExceptionFilter {
  constructor(
    private readonly recorder: RefusalRecorder,
    private readonly verifier: TokenVerifier,
    private readonly clock: () => number = Date.now,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): Promise<void> {
    const http = host.switchToHttp();
    return this.answer(exception, http.getRequest<ExpressRequest>(), http.getResponse());
  }

  private async answer(exception: unknown, req: ExpressRequest, res: ExpressResponse) {
    let e = httpErrorOf(exception, req.method, req.path);
    let principal = req[PRINCIPAL_KEY];
    // Refused before the guard ran (an unknown route or method, a path that does not decode):
    // authenticate first, so the caller is on record and an anonymous one learns nothing more.
    if (
      principal === undefined &&
      e.refusal !== undefined &&
      e.refusal.reason !== 'PRINCIPAL_UNAUTHENTICATED'
    ) {
      try {
        const header = req.headers['authorization'];
        principal = await this.verifier.verify(
          bearerToken(typeof header === 'string' ? header : undefined),
        );
      } catch (err: unknown) {
        e = httpErrorOf(err, req.method, req.path);
      }
    }
    let body: Record<string, unknown> = { error: { code: e.code, message: e.message } };
    if (e.refusal !== undefined) {
      const traceId = traceIdOf();
      const { decision, entry } = ownRefusal(
        { ...e.refusal, explanation: e.message, decidedAt: this.clock() },
        {
          endpointFamily: 'protocol',
          ...(principal !== undefined ? { principal } : {}),
          ...(traceId !== undefined ? { traceId } : {}),
          resource: {
            status: 'resolved',
            resource: { kind: 'url', raw: req.originalUrl, canonical: `${req.method} ${req.path}` },
          },
        },
      );
      try {
        await this.recorder.appendOwn(entry);
      } catch (err: unknown) {
        // The refusal stands either way; with the database away there is nowhere else to put it.
        log.error({ err, decisionId: decision.id }, 'audit API refusal could not be recorded');
      }
      body = { reason: decision.reason, decisionId: decision.id, ...body };
    }
    if (res.headersSent) return;
    for (const [name, value] of Object.entries(e.headers ?? {})) res.setHeader(name, value);
    res.status(e.status).json(body);
  }
}
